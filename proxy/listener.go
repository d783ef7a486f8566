package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-gw/strait/proxy/h2"
	"github.com/strait-gw/strait/proxy/internal/sock"
)

// boundListener is one bound socket. Its configuration is swapped atomically: connections
// accepted after a swap use the new chains, connections in flight keep theirs.
type boundListener struct {
	p   *Proxy
	ln  net.Listener
	cfg atomic.Pointer[listenerConfig]

	mu sync.Mutex
	// servers serve HTTP for each route configuration of this socket, created on first use
	// and kept across configuration changes.
	servers map[string]*httpServer
	conns   sync.WaitGroup
	// fast are the connections on the fast path (fast.go).
	fast fastConns
	// releases holds, for each connection handed to an HTTP server, what to call once the
	// server is done with it. The connection itself is handed over unwrapped: net/http finds
	// a *tls.Conn's state (and serves HTTP/2 by ALPN) only on the connection it accepts.
	releases sync.Map
}

// httpServer is an http.Server fed with connections by the accept loop.
type httpServer struct {
	srv   *http.Server // HTTP/1.x connections the fast path hands over
	h2    *h2.Server   // HTTP/2 connections: every stream goes to srv's handler
	conns *connQueue
}

func (p *Proxy) bind(cfg *listenerConfig) (*boundListener, error) {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	bl := &boundListener{p: p, ln: ln, servers: map[string]*httpServer{}}
	bl.cfg.Store(cfg)
	go bl.accept()
	p.log.Info("listening", "listener", cfg.name, "address", ln.Addr().String())
	return bl, nil
}

func (bl *boundListener) accept() {
	for {
		conn, err := bl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off instead of spinning.
			bl.p.log.Warn("accept", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !bl.p.connections.acquire() {
			bl.p.metrics.rejectedConnections.Inc()
			_ = conn.Close()
			continue
		}
		bl.conns.Add(1)
		go bl.handle(conn)
	}
}

// handle dispatches a new connection to its filter chain.
func (bl *boundListener) handle(conn net.Conn) {
	release := func() {
		bl.p.connections.release()
		bl.conns.Done()
	}
	cfg := bl.cfg.Load()
	if !cfg.tlsPort {
		bl.dispatch(cfg, cfg.chains[0], conn, nil, release)
		return
	}
	serverName, hello, err := readClientHello(conn)
	if err != nil {
		bl.p.log.Debug("no ClientHello", "listener", cfg.name, "error", err)
		_ = conn.Close()
		release()
		return
	}
	chain := cfg.chainFor(serverName)
	if chain == nil {
		_ = conn.Close()
		release()
		return
	}
	bl.dispatch(cfg, chain, conn, hello, release)
}

// handshake terminates TLS on a downstream connection. It is a function of its own so that
// plaintext connections do not carry its stack frame (see fastConn.logAccess).
func handshake(c net.Conn, config *tls.Config) (*tls.Conn, error) {
	tc := tls.Server(c, config)
	ctx, cancel := context.WithTimeout(context.Background(), clientHelloTimeout)
	defer cancel()
	return tc, tc.HandshakeContext(ctx)
}

// dispatch runs a chain on a connection; hello holds bytes already read from it. release is
// called once the connection is done.
func (bl *boundListener) dispatch(cfg *listenerConfig, chain *chainConfig, conn net.Conn, hello []byte, release func()) {
	switch {
	case chain.tcp != nil:
		defer release()
		bl.p.forwardTCP(chain.tcp, conn, hello)
	case chain.http != nil:
		c := sock.Wrap(conn) // L4 legs stay plain kernel sockets, for in-kernel splicing
		if hello != nil {
			c = newReplayConn(conn, hello)
		}
		var tc *tls.Conn
		if chain.tls != nil {
			var err error
			if tc, err = handshake(c, chain.tls); err != nil {
				_ = conn.Close()
				release()
				return
			}
			if tc.ConnectionState().NegotiatedProtocol == "h2" {
				bl.serveH2(cfg, chain, tc, nil, release)
				return
			}
			c = tc
		}
		bl.serveFast(cfg, chain, c, tc, release)
	}
}

// serveNetHTTP hands an HTTP connection to the net/http server of its route configuration.
func (bl *boundListener) serveNetHTTP(cfg *listenerConfig, chain *chainConfig, c net.Conn, release func()) {
	bl.releases.Store(c, release)
	if !bl.server(cfg, chain).conns.push(c) {
		bl.releases.Delete(c)
		release()
	}
}

// serveH2 serves an HTTP/2 connection (ALPN h2, or a prior-knowledge preface, which r may
// already hold) with the chain's server until it ends, and closes it.
func (bl *boundListener) serveH2(cfg *listenerConfig, chain *chainConfig, c net.Conn, r io.Reader, release func()) {
	defer release()
	_ = bl.server(cfg, chain).h2.ServeConn(context.Background(), c, r)
}

// server returns the HTTP server of a chain's route configuration.
func (bl *boundListener) server(cfg *listenerConfig, chain *chainConfig) *httpServer {
	key := chain.http.routeConfig
	bl.mu.Lock()
	defer bl.mu.Unlock()
	if s := bl.servers[key]; s != nil {
		return s
	}
	s := &httpServer{conns: newConnQueue(bl.ln.Addr())}
	s.srv = bl.p.newHTTPServer(cfg.name, key)
	s.srv.ConnContext = connContext
	s.srv.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateClosed || state == http.StateHijacked {
			if release, ok := bl.releases.LoadAndDelete(c); ok {
				release.(func())()
			}
		}
	}
	s.h2 = &h2.Server{
		Config:  &h2.Config{IdleTimeout: idleTimeout, Logger: bl.p.log},
		Handler: h2.HandlerFunc(func(st *h2.Stream) { st.ServeHTTP(s.srv.Handler) }),
	}
	bl.servers[key] = s
	go func() { _ = s.srv.Serve(s.conns) }()
	return s
}

// shutdown stops accepting and drains the connections in flight until ctx ends.
func (bl *boundListener) shutdown(ctx context.Context) {
	_ = bl.ln.Close()
	bl.mu.Lock()
	servers := make([]*httpServer, 0, len(bl.servers))
	for _, s := range bl.servers {
		servers = append(servers, s)
	}
	bl.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { bl.fast.drain(ctx) })
	for _, s := range servers {
		wg.Go(func() {
			if err := s.srv.Shutdown(ctx); err != nil {
				_ = s.srv.Close()
			}
		})
		wg.Go(func() { _ = s.h2.Shutdown(ctx) }) // past ctx, it closes what is left
	}
	wg.Wait()
}

// connQueue is a net.Listener whose connections come from the accept loop.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.closed:
		_ = c.Close()
		return false
	}
}

// Accept returns the next connection the accept loop hands over.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; connections pushed afterwards are closed.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

// Addr is the bound socket's address.
func (q *connQueue) Addr() net.Addr { return q.addr }

// connLimiter bounds the connections the proxy holds open at once.
type connLimiter struct {
	max  int64
	open atomic.Int64
}

func (l *connLimiter) acquire() bool {
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *connLimiter) release() { l.open.Add(-1) }
