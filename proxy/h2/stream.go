package h2

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// Stream is one request and its response. Its methods are for the handler serving it, on
// the handler's goroutine (Done and Err may be called from anywhere). A Stream is reused
// after its handler returns: keep no reference to it, its fields or its trailers.
type Stream struct {
	c  *serverConn
	id uint32
	h  Handler

	// The request, set before the handler starts.
	method, scheme, authority, path string
	fields                          []Field
	contentLength                   int64 // -1: unknown

	// Under c.mu.
	cond        sync.Cond
	refs        int // the stream table, the handler, the writer
	closed      bool
	err         error       // set once, on a reset or the connection's end; Done is closed from then on
	dead        atomic.Bool // closed with an error: a lock-free look for Write
	handlerDone bool
	done        chan struct{}
	cancel      func()

	// Request body, under c.mu.
	in          []byte
	inOff       int
	recvWin     int64
	recvUnacked int64
	received    int64
	recvClosed  bool
	trailers    []Field

	// Response, under c.mu once handed to the writer.
	headWritten bool // WriteHead was called
	headGone    bool // the head was handed to the writer (the handler's to read)
	headPending bool // the head waits for the writer
	interims    []interim
	continued   bool // the body was asked for: 100 Continue went out if the client expected it
	status      int
	resp        []Field
	respTrail   []Field
	wbuf        []byte  // the handler's buffered body
	wbufp       *[]byte // where wbuf came from in bodyBufPool
	out         []byte  // handed to the writer
	outEnd      bool
	outBusy     bool // the writer has not consumed out yet
	queued      bool // on c.ready or c.connBlocked
	sendWin     int64
	sendClosed  bool
}

var streamPool = sync.Pool{New: func() any { return new(Stream) }}

// bodyBufSize is the size of a response body buffer: smaller writes are gathered, larger
// ones handed to the writer as they are.
const bodyBufSize = 16 << 10

var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, bodyBufSize); return &b }}

// newStream takes a stream from the pool for request id on c. Under c.mu.
func newStream(c *serverConn, id uint32) *Stream {
	s := streamPool.Get().(*Stream)
	s.c, s.id = c, id
	s.cond.L = &c.mu
	s.contentLength = -1
	s.recvWin = int64(c.cfg.InitialWindowSize)
	s.sendWin = int64(c.peerWin)
	return s
}

// unrefLocked drops a reference to s; the last one returns it to the pool.
func (c *serverConn) unrefLocked(s *Stream) {
	s.refs--
	if s.refs == 0 {
		c.releaseLocked(s)
	}
}

func (c *serverConn) releaseLocked(s *Stream) {
	if s.wbufp != nil {
		*s.wbufp = s.wbuf[:0]
		bodyBufPool.Put(s.wbufp)
	}
	in := s.in[:0]
	if cap(in) > 64<<10 {
		in = nil
	}
	*s = Stream{
		fields:    clearFields(s.fields),
		trailers:  clearFields(s.trailers),
		resp:      clearFields(s.resp),
		respTrail: clearFields(s.respTrail),
		in:        in,
	}
	streamPool.Put(s)
}

func clearFields(f []Field) []Field {
	if cap(f) > 64 {
		return nil
	}
	clear(f)
	return f[:0]
}

// maxIdleWorkers is how many handler goroutines of a busy connection wait for its next
// stream instead of exiting: a new goroutine costs an allocation and, often, growing its
// stack again.
const maxIdleWorkers = 4

// startHandlerLocked serves s on an idle worker of the connection, or a new one.
func (c *serverConn) startHandlerLocked(s *Stream) {
	if c.idleWorkers > 0 {
		c.idleWorkers--
		c.work <- s // cannot block: one slot per idle worker
		return
	}
	go c.worker(s)
}

// worker serves s, then other streams while the connection is busy.
func (c *serverConn) worker(s *Stream) {
	for {
		c.runHandler(s)
		c.mu.Lock()
		if c.closed || c.handlers == 0 || c.idleWorkers >= maxIdleWorkers {
			c.mu.Unlock()
			return
		}
		c.idleWorkers++
		c.mu.Unlock()
		if s = <-c.work; s == nil {
			return
		}
	}
}

// stopIdleWorkersLocked ends the idle workers: a connection without streams keeps no
// goroutine stacks.
func (c *serverConn) stopIdleWorkersLocked() {
	for ; c.idleWorkers > 0; c.idleWorkers-- {
		c.work <- nil
	}
}

// runHandler serves s with its handler and ends its response.
func (c *serverConn) runHandler(s *Stream) {
	h := s.h
	defer c.finish(s)
	defer func() {
		if r := recover(); r != nil {
			if err, _ := r.(error); c.cfg.Logger != nil && !errors.Is(err, errAbort) {
				c.cfg.Logger.Error("h2 handler panic", "stream", s.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
			s.Reset(http2.ErrCodeInternal)
		}
	}()
	h.ServeH2(s)
}

// errAbort is a panic value that resets the stream without a log line.
var errAbort = errors.New("h2: handler aborted")

// finish ends the response of a handler that returned: the buffered body goes to the writer
// with END_STREAM (and the trailers).
func (c *serverConn) finish(s *Stream) {
	c.mu.Lock()
	c.handlers--
	s.handlerDone = true
	if rest := int64(len(s.in) - s.inOff); rest > 0 {
		s.in, s.inOff = s.in[:0], 0
		c.creditLocked(nil, rest)
	}
	if !s.closed && !s.sendClosed && !s.outBusy {
		if !s.headWritten {
			s.headWritten, s.headPending, s.status = true, true, 200
		}
		s.out, s.outEnd, s.outBusy = s.wbuf, true, true
		c.enqueueLocked(s)
	}
	if c.handlers == 0 {
		c.stopIdleWorkersLocked()
		if len(c.streams) == 0 {
			c.checkDrainedLocked()
		}
	}
	c.unrefLocked(s)
	c.mu.Unlock()
}

// enqueueLocked puts s on the writer's list.
func (c *serverConn) enqueueLocked(s *Stream) {
	if s.queued {
		return
	}
	s.queued = true
	s.refs++
	c.ready = append(c.ready, s)
	c.wakeWriter()
}

// ID is the stream's id.
func (s *Stream) ID() uint32 { return s.id }

// Method is the request's :method.
func (s *Stream) Method() string { return s.method }

// Scheme is the request's :scheme ("" for CONNECT).
func (s *Stream) Scheme() string { return s.scheme }

// Authority is the request's :authority, "" if it had none (then a host field may say it).
func (s *Stream) Authority() string { return s.authority }

// Path is the request's :path ("" for CONNECT).
func (s *Stream) Path() string { return s.path }

// Fields are the request's header fields but the pseudo-header ones, in the order they came,
// names lowercase. The list belongs to the stream.
func (s *Stream) Fields() []Field { return s.fields }

// ContentLength is the request's content-length, -1 if it gave none.
func (s *Stream) ContentLength() int64 { return s.contentLength }

// RemoteAddr is the client's address.
func (s *Stream) RemoteAddr() string { return s.c.remoteAddr }

// TLS is the connection's TLS state, nil on h2c.
func (s *Stream) TLS() *tls.ConnectionState { return s.c.tlsState }

// HasBody reports whether the request may have a body: it did not end with its head.
func (s *Stream) HasBody() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return !s.recvClosed || len(s.in) > s.inOff
}

// Read reads the request body. It returns io.EOF at its end (Trailers are then known) and
// the stream's error if it was reset. Reading gives the client flow-control credit back.
func (s *Stream) Read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.closed && s.err != nil {
			return 0, s.err
		}
		if s.inOff < len(s.in) {
			n := copy(p, s.in[s.inOff:])
			s.inOff += n
			if s.inOff == len(s.in) {
				s.in, s.inOff = s.in[:0], 0
			}
			c.creditLocked(s, int64(n))
			return n, nil
		}
		if s.recvClosed {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if !s.continued {
			// The handler wants the body: a client that asked first gets its go-ahead.
			s.continued = true
			if !s.headWritten && expectsContinue(s.fields) {
				s.interimLocked(http.StatusContinue, nil)
			}
		}
		s.cond.Wait()
	}
}

// expectsContinue reports whether a request's fields ask for 100 Continue before its body.
func expectsContinue(fields []Field) bool {
	for _, f := range fields {
		if f.Name == "expect" && strings.EqualFold(f.Value, "100-continue") {
			return true
		}
	}
	return false
}

// Trailers are the request's trailer fields, known once Read returned io.EOF.
func (s *Stream) Trailers() []Field {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if !s.recvClosed {
		return nil
	}
	return s.trailers
}

// Done is closed when the stream is reset, by the client or the server, or its connection
// ends before the response did.
func (s *Stream) Done() <-chan struct{} {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.err != nil {
			close(s.done)
		}
	}
	return s.done
}

// Err is why the stream was cut short: a StreamError, or an error saying the connection
// ended; nil while it is not.
func (s *Stream) Err() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.err
}

// closedErrLocked is why a closed stream takes no more output: its reset, or the
// connection's end.
func (s *Stream) closedErrLocked() error {
	if s.err != nil {
		return s.err
	}
	return errConnClosed
}

// onCancel sets a function called (under the connection's lock) when the stream is cut
// short.
func (s *Stream) onCancel(f func()) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.err != nil {
		f()
		return
	}
	s.cancel = f
}

// Reset resets the stream with code: the client gets RST_STREAM, the handler's reads and
// writes fail from then on.
func (s *Stream) Reset(code http2.ErrCode) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed && (s.err != nil || s.sendClosed) {
		return
	}
	c.ctrls = append(c.ctrls, ctrl{kind: ctrlRST, stream: s.id, code: code})
	c.wakeWriter()
	if !s.closed {
		c.closeStreamLocked(s, StreamError{Code: code})
	}
}

// errHeadWritten is WriteHead's error when called twice.
var errHeadWritten = errors.New("h2: response head already written")

// WriteHead sets the response's status and header fields, names lowercase and without
// connection-specific fields (the handler's to ensure). The head goes out with the first
// body bytes that do, on Flush, or when the handler returns. fields is copied.
func (s *Stream) WriteHead(status int, fields []Field) error {
	if s.headWritten {
		return errHeadWritten
	}
	if status < 100 || status > 999 {
		return fmt.Errorf("h2: invalid status %d", status)
	}
	s.headWritten = true
	c := s.c
	c.mu.Lock()
	s.headPending, s.status = true, status
	s.resp = append(s.resp, fields...)
	c.mu.Unlock()
	return nil
}

// interim is an informational (1xx) response head waiting for the writer.
type interim struct {
	status int
	fields []Field
}

// WriteInterim sends an informational response head (1xx but 101: 103 Early Hints, say)
// at once, ahead of the final one. fields is copied.
func (s *Stream) WriteInterim(status int, fields []Field) error {
	if s.headWritten {
		return errHeadWritten
	}
	if status < 100 || status > 199 || status == http.StatusSwitchingProtocols {
		return fmt.Errorf("h2: invalid interim status %d", status)
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return s.closedErrLocked()
	}
	s.interimLocked(status, fields)
	return nil
}

func (s *Stream) interimLocked(status int, fields []Field) {
	s.interims = append(s.interims, interim{status: status, fields: slices.Clone(fields)})
	s.c.enqueueLocked(s)
}

// SetTrailers sets the trailer fields sent after the body when the handler returns.
// fields is copied.
func (s *Stream) SetTrailers(fields []Field) {
	c := s.c
	c.mu.Lock()
	s.respTrail = append(s.respTrail[:0], fields...)
	c.mu.Unlock()
}

// Write writes body bytes. Small writes are gathered and go out on Flush, when the buffer
// fills, or when the handler returns; a write that fills the buffer waits for the client's
// flow-control credit. It fails once the stream is reset.
func (s *Stream) Write(p []byte) (int, error) {
	if s.dead.Load() {
		return 0, s.Err()
	}
	if !s.headWritten {
		_ = s.WriteHead(200, nil)
	}
	if s.wbufp == nil {
		s.wbufp = bodyBufPool.Get().(*[]byte)
		s.wbuf = *s.wbufp
	}
	n := len(p)
	if len(s.wbuf)+len(p) <= cap(s.wbuf) {
		s.wbuf = append(s.wbuf, p...)
		return n, nil
	}
	if len(s.wbuf) > 0 {
		if err := s.handoff(s.wbuf); err != nil {
			return 0, err
		}
		s.wbuf = s.wbuf[:0]
	}
	if len(p) >= cap(s.wbuf) {
		if err := s.handoff(p); err != nil {
			return 0, err
		}
		return n, nil
	}
	s.wbuf = append(s.wbuf, p...)
	return n, nil
}

// Flush sends the head and the buffered body now, and waits until the writer took them.
func (s *Stream) Flush() error {
	if !s.headWritten {
		_ = s.WriteHead(200, nil)
	}
	if s.headGone && len(s.wbuf) == 0 {
		return nil // nothing to wait for
	}
	if err := s.handoff(s.wbuf); err != nil {
		return err
	}
	s.wbuf = s.wbuf[:0]
	return nil
}

// handoff gives data (and the pending head) to the writer and waits until it has taken it
// all, which may take the client's flow-control credit.
func (s *Stream) handoff(data []byte) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return s.closedErrLocked()
	}
	s.out, s.outBusy, s.headGone = data, true, true
	c.enqueueLocked(s)
	for s.outBusy && !s.closed {
		s.cond.Wait()
	}
	s.out = nil
	if s.closed && s.err != nil {
		return s.err
	}
	return nil
}
