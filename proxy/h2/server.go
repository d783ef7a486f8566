package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Field is one header field. Names are lowercase, as HTTP/2 carries them.
type Field struct {
	Name, Value string
}

// Handler serves the streams of a connection, each on its own goroutine. When ServeH2
// returns, the response ends: what was written goes out, with END_STREAM.
type Handler interface {
	ServeH2(s *Stream)
}

// HandlerFunc is a function serving as a Handler.
type HandlerFunc func(s *Stream)

// ServeH2 calls f(s).
func (f HandlerFunc) ServeH2(s *Stream) { f(s) }

// Config holds a server's limits. The zero value of a field means its default.
type Config struct {
	// MaxConcurrentStreams is the number of streams a client may have open at once (250).
	MaxConcurrentStreams uint32
	// InitialWindowSize is each stream's receive window, how much of a request body may be
	// in flight before the handler reads it (256 KiB; at least 65,535).
	InitialWindowSize uint32
	// ConnWindowSize is the connection's receive window (1 MiB; at least 65,535).
	ConnWindowSize uint32
	// MaxFrameSize is the largest frame the server accepts (16 KiB, RFC 9113's floor).
	MaxFrameSize uint32
	// MaxHeaderListSize bounds a request's header list as RFC 9113 counts it (64 KiB). A
	// larger list is answered 431; an encoded header block larger than twice this ends
	// the connection.
	MaxHeaderListSize uint32
	// IdleTimeout closes, with GOAWAY, a connection that has had no stream for this long
	// (0: never).
	IdleTimeout time.Duration
	// MaxResetRate and MaxResetBurst bound client resets of streams still being served: a
	// token bucket of MaxResetBurst tokens (1000) refilled at MaxResetRate per second (200).
	// A client past it gets GOAWAY ENHANCE_YOUR_CALM.
	MaxResetRate  float64
	MaxResetBurst int
	// WriteBufferSize is the size of the buffer frames are coalesced in (32 KiB).
	WriteBufferSize int
	// ReadBufferSize is the size of the buffer frames are read through (16 KiB) when
	// ServeConn is not given a reader.
	ReadBufferSize int
	// Logger, if set, receives handler panics and connection errors at debug level.
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	def := func(v *uint32, def, lo, hi uint32) {
		if *v == 0 {
			*v = def
		}
		*v = min(max(*v, lo), hi)
	}
	def(&d.MaxConcurrentStreams, 250, 1, 1<<31-1)
	def(&d.InitialWindowSize, 256<<10, 65535, 1<<31-1)
	def(&d.ConnWindowSize, 1<<20, 65535, 1<<31-1)
	def(&d.MaxFrameSize, 16<<10, 16<<10, 1<<24-1)
	def(&d.MaxHeaderListSize, 64<<10, 1<<10, 1<<30)
	if d.MaxResetRate <= 0 {
		d.MaxResetRate = 200
	}
	if d.MaxResetBurst <= 0 {
		d.MaxResetBurst = 1000
	}
	if d.WriteBufferSize <= 0 {
		d.WriteBufferSize = 32 << 10
	}
	if d.ReadBufferSize <= 0 {
		d.ReadBufferSize = 16 << 10
	}
	return d
}

// Server serves HTTP/2 connections and shuts them down together.
type Server struct {
	// Config holds the limits; nil means the defaults.
	Config *Config
	// Handler serves every stream.
	Handler Handler

	mu       sync.Mutex
	conns    map[*serverConn]struct{}
	shutdown bool
}

// ErrServerClosed is returned by ServeConn after Shutdown.
var ErrServerClosed = errors.New("h2: server closed")

// ServeConn serves one connection with the default Server settings of cfg and h until the
// connection ends. See Server.ServeConn.
func ServeConn(ctx context.Context, nc net.Conn, cfg *Config, h Handler) error {
	srv := &Server{Config: cfg, Handler: h}
	return srv.ServeConn(ctx, nc, nil)
}

// ServeConn serves one HTTP/2 connection until it ends, and closes it. The client's
// preface is read from r if r is not nil (a bufio.Reader that already holds the preface
// the listener peeked at, or part of the connection's first bytes), else from nc. nc may be
// a *tls.Conn whose handshake negotiated "h2". Canceling ctx closes the connection at
// once; Shutdown closes it gracefully. The contexts of requests served through
// (*Stream).ServeHTTP derive from ctx.
func (srv *Server) ServeConn(ctx context.Context, nc net.Conn, r io.Reader) error {
	cfg := srv.Config.withDefaults()
	c := &serverConn{
		srv:        srv,
		cfg:        cfg,
		h:          srv.Handler,
		nc:         nc,
		ctx:        ctx,
		remoteAddr: nc.RemoteAddr().String(),
		streams:    make(map[uint32]*Stream),
		wake:       make(chan struct{}, 1),
		work:       make(chan *Stream, maxIdleWorkers),
		writerDone: make(chan struct{}),
		sendWin:    65535,
		peerWin:    65535,
		peerFrame:  16 << 10,
		recvWin:    65535,
		resetToken: float64(cfg.MaxResetBurst),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	if r == nil {
		r = bufio.NewReaderSize(nc, cfg.ReadBufferSize)
	} else if _, ok := r.(*bufio.Reader); !ok {
		r = bufio.NewReaderSize(r, cfg.ReadBufferSize)
	}
	c.br = r
	c.bw = bufio.NewWriterSize(nc, cfg.WriteBufferSize)
	c.rfr = http2.NewFramer(nil, r)
	c.rfr.SetReuseFrames()
	c.rfr.SetMaxReadFrameSize(cfg.MaxFrameSize)
	c.wfr = http2.NewFramer(c.bw, nil)
	c.hdec = hpack.NewDecoder(4096, c.emit)
	c.henc = hpack.NewEncoder(&c.hbuf)

	srv.mu.Lock()
	if srv.shutdown {
		srv.mu.Unlock()
		_ = nc.Close()
		return ErrServerClosed
	}
	if srv.conns == nil {
		srv.conns = make(map[*serverConn]struct{})
	}
	srv.conns[c] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.conns, c)
		srv.mu.Unlock()
	}()

	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	defer stop()
	return c.serve()
}

// Shutdown closes every connection gracefully: each gets GOAWAY with the last stream id it
// will serve, its open streams finish, and it closes. When ctx ends first, the remaining
// connections are closed at once and ctx's error is returned. ServeConn refuses new
// connections from the call on.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.shutdown = true
	for c := range srv.conns {
		c.drain()
	}
	srv.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		srv.mu.Lock()
		n := len(srv.conns)
		srv.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			srv.mu.Lock()
			for c := range srv.conns {
				_ = c.nc.Close()
			}
			srv.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ctrlKind is a kind of frame the writer sends on behalf of the connection.
type ctrlKind uint8

const (
	ctrlSettings ctrlKind = iota
	ctrlSettingsAck
	ctrlPing
	ctrlWindowUpdate
	ctrlRST
	ctrlGoAway
)

// ctrl is a connection-level frame waiting for the writer.
type ctrl struct {
	kind   ctrlKind
	stream uint32
	n      uint32 // window increment, or the header table size a SETTINGS ACK applies first
	code   http2.ErrCode
	ping   [8]byte
	table  bool // n is a new header table size
}

// serverConn is one connection. The reader (serve's goroutine) owns the decoding state;
// everything under mu is shared with the writer goroutine and the handlers.
type serverConn struct {
	srv        *Server
	cfg        Config
	h          Handler
	nc         net.Conn
	ctx        context.Context
	tlsState   *tls.ConnectionState
	remoteAddr string
	br         io.Reader
	bw         *bufio.Writer
	rfr, wfr   *http2.Framer

	// Reader-only.
	hdec        *hpack.Decoder
	blk         headerBlock
	trailerBuf  []Field
	sawSettings bool
	resetToken  float64
	resetLast   time.Time

	// Writer-only.
	henc     *hpack.Encoder
	hbuf     headerBuf
	batch    []op
	dataHead [9]byte

	mu          sync.Mutex
	streams     map[uint32]*Stream
	maxID       uint32 // highest stream id the client opened
	handlers    int    // running handlers
	goneAway    bool   // GOAWAY sent or received: no new streams
	closed      bool
	sendWin     int64 // connection send window
	peerWin     int32 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   uint32
	recvWin     int64 // what the client may still send on the connection
	recvUnacked int64 // consumed, not yet given back
	ctrls       []ctrl
	ready       []*Stream
	spare       []*Stream
	connBlocked []*Stream
	writerIdle  bool
	writerExit  bool // leave once everything queued is written
	wake        chan struct{}
	writerDone  chan struct{}
	idleWorkers int // handler goroutines waiting on work
	work        chan *Stream
	idleSince   time.Time
	idleTimer   *time.Timer
}

// errConnClosed is the error of a stream whose connection ended.
var errConnClosed = errors.New("h2: connection closed")

// StreamError is the error of a stream that was reset, by the client or by the server.
type StreamError struct {
	Code   http2.ErrCode
	Remote bool // the client reset it
}

func (e StreamError) Error() string {
	if e.Remote {
		return "h2: stream reset by client: " + e.Code.String()
	}
	return "h2: stream reset: " + e.Code.String()
}

// serve reads the connection's frames until it ends.
func (c *serverConn) serve() error {
	err := c.readPreface()
	c.mu.Lock()
	c.ctrls = append(c.ctrls, ctrl{kind: ctrlSettings})
	if extra := int64(c.cfg.ConnWindowSize) - 65535; extra > 0 {
		c.ctrls = append(c.ctrls, ctrl{kind: ctrlWindowUpdate, n: uint32(extra)})
		c.recvWin += extra
	}
	c.idleSince = time.Now()
	if c.cfg.IdleTimeout > 0 {
		c.idleTimer = time.AfterFunc(c.cfg.IdleTimeout, c.checkIdle)
	}
	c.mu.Unlock()
	go c.writeLoop()
	if err == nil {
		err = c.readLoop()
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.goAway(http2.ErrCode(ce))
		c.linger()
		err = fmt.Errorf("h2: %w", err)
	}
	c.close()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if c.cfg.Logger != nil && err != nil {
		c.cfg.Logger.Debug("h2 connection ended", "remote", c.remoteAddr, "error", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, errGracefulEnd) {
		return nil
	}
	return err
}

// errGracefulEnd ends the read loop once a drained connection's last stream is done.
var errGracefulEnd = errors.New("h2: connection drained")

func (c *serverConn) readPreface() error {
	if c.cfg.IdleTimeout > 0 {
		// A client that says nothing is idle too.
		_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		defer func() { _ = c.nc.SetReadDeadline(time.Time{}) }()
	}
	var buf [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, buf[:]); err != nil {
		return fmt.Errorf("h2: reading the client preface: %w", err)
	}
	if string(buf[:]) != http2.ClientPreface {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// goAway queues GOAWAY with code and has the writer leave after writing it.
func (c *serverConn) goAway(code http2.ErrCode) {
	c.mu.Lock()
	c.goneAway = true
	c.ctrls = append(c.ctrls, ctrl{kind: ctrlGoAway, stream: c.maxID, code: code})
	c.writerExit = true
	c.wakeWriter()
	c.mu.Unlock()
}

// drain starts a graceful shutdown: GOAWAY NO_ERROR with the last stream id; the connection
// closes when its streams are done.
func (c *serverConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.goneAway = true
	c.ctrls = append(c.ctrls, ctrl{kind: ctrlGoAway, stream: c.maxID, code: http2.ErrCodeNo})
	c.checkDrainedLocked()
	c.wakeWriter()
}

// checkDrainedLocked has the writer finish once a connection that went away has nothing
// left to serve.
func (c *serverConn) checkDrainedLocked() {
	if c.goneAway && c.handlers == 0 && len(c.streams) == 0 && !c.writerExit {
		c.writerExit = true
		c.wakeWriter()
	}
}

func (c *serverConn) checkIdle() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.handlers == 0 && len(c.streams) == 0 {
		if rest := c.cfg.IdleTimeout - time.Since(c.idleSince); rest > 0 {
			c.idleTimer.Reset(rest)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.drain()
		return
	}
	c.idleTimer.Reset(c.cfg.IdleTimeout)
	c.mu.Unlock()
}

// close ends the connection: every stream is closed with errConnClosed, the writer writes
// what it was asked to and leaves, and the socket closes.
func (c *serverConn) close() {
	c.mu.Lock()
	c.closed = true
	for _, s := range c.streams {
		c.closeStreamLocked(s, errConnClosed)
	}
	c.stopIdleWorkersLocked()
	c.writerExit = true
	c.wakeWriter()
	c.mu.Unlock()
	// The writer may be stuck on a client that does not read: give it a second.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	<-c.writerDone
	_ = c.nc.Close()
}

// linger lets the client read the GOAWAY that ends a connection in error: closing a socket
// with unread bytes in it resets the connection, and the reset may overtake the GOAWAY. Once
// the writer is done, the server's side is shut and what the client still sends is
// discarded, for a second at most.
func (c *serverConn) linger() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	<-c.writerDone
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, c.br)
}

func (c *serverConn) wakeWriter() {
	if c.writerIdle {
		c.writerIdle = false
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}
