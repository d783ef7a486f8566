package upstream

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// connBufferSize is the read and write buffer of a connection of the proxy's own codec.
const connBufferSize = 4 << 10

// Exchange is one request to a cluster sent by the proxy's own HTTP/1.1 codec: the circuit
// breakers, load balancing and health accounting of RoundTrip, over the cluster's pool of
// raw keep-alive connections. Every Exchange that Begin returns must End.
type Exchange struct {
	c        *Cluster
	cfg      *clusterConfig
	ep       *Endpoint
	deadline time.Time
	tried    triedEndpoints
}

// Conn is a keep-alive HTTP/1.1 connection to an endpoint, with its buffers.
type Conn struct {
	net.Conn
	R *bufio.Reader
	W *bufio.Writer
	// Reused is set when the connection carried a request before: a failure on it before
	// any answer may be the upstream having closed it while idle.
	Reused bool
	addr   string
	idleAt time.Time
	// peer looks into the dialer's connection, under the accounting wrapper.
	peer *peeker
}

// Closed reports whether the upstream has closed a pooled connection while it was idle,
// without waiting (a system call). For a request that cannot be sent twice: one that fails
// on a closed connection cannot be resent on another.
func (c *Conn) Closed() bool {
	if c.R.Buffered() > 0 {
		return true
	}
	closed, pending := c.peer.peek()
	return closed || pending
}

// Codec reports whether the cluster's requests can go over the proxy's own codec: plaintext
// HTTP/1.1 upstream. Others go through RoundTrip.
func (c *Cluster) Codec() bool {
	cfg := c.cfg.Load()
	return cfg != nil && !cfg.spec.transport.http2 && cfg.spec.tls == nil
}

// Begin takes the request's circuit breaker reservations, waiting for a connection slot no
// later than deadline (zero: no limit) and while ctx lasts (context.Background() for a
// request that cannot tell when its client leaves), and picks its endpoint at random (the codec serves no hash
// policies). Errors are those of RoundTrip.
func (c *Cluster) Begin(ctx context.Context, deadline time.Time) (Exchange, error) {
	cfg, ep, err := c.begin(ctx, deadline, nil)
	if err != nil {
		return Exchange{}, err
	}
	x := Exchange{c: c, cfg: cfg, ep: ep, deadline: deadline}
	x.tried.add(ep)
	return x, nil
}

// Endpoint returns the endpoint the request goes to, which Conn may change.
func (x *Exchange) Endpoint() *Endpoint { return x.ep }

// Conn returns an idle connection to the endpoint, or with fresh a new one, dialed within
// the cluster's connect timeout and the request's deadline. When the endpoint cannot be
// connected to, the request moves to another endpoint of the cluster (up to 3 in all),
// whose idle connection or a new one is returned: nothing of the request was sent yet. A
// failure to connect to the last one is a connect error (see RoundTrip).
func (x *Exchange) Conn(fresh bool) (*Conn, error) {
	for {
		conn, err := x.conn(fresh)
		if err == nil || !IsConnectError(err) || (!x.deadline.IsZero() && !time.Now().Before(x.deadline)) {
			return conn, err
		}
		next := x.c.reconnect(x.cfg, &x.tried, nil)
		if next == nil {
			return nil, err
		}
		x.ep, fresh = next, false
	}
}

// conn returns an idle connection to the endpoint or, with fresh or without one, a new one.
func (x *Exchange) conn(fresh bool) (*Conn, error) {
	tr := x.cfg.transport
	if !fresh {
		if conn := tr.idle.get(x.ep.addr, tr.opts.idleTimeout); conn != nil {
			return conn, nil
		}
	}
	deadline := time.Now().Add(tr.opts.connectTimeout)
	if !x.deadline.IsZero() && x.deadline.Before(deadline) {
		deadline = x.deadline
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	nc, err := x.c.dialPooled(ctx, x.ep.addr, false, 0)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: nc, R: bufio.NewReaderSize(nc, connBufferSize), W: bufio.NewWriterSize(nc, connBufferSize),
		addr: x.ep.addr, peer: newPeeker(nc.(*trackedConn).Conn)}, nil
}

// Put returns a connection whose last response was read to its end to the idle pool.
func (x *Exchange) Put(conn *Conn) {
	tr := x.cfg.transport
	if tr.retired.Load() || conn.R.Buffered() > 0 || !tr.idle.put(conn, tr.opts.maxIdle, tr.opts.idleTimeout) {
		_ = conn.Close()
	}
}

// Responded accounts for a response with this status.
func (x *Exchange) Responded(status int) { x.c.responded(x.cfg.spec.outlier, x.ep, status) }

// Failed accounts for a request that got no response from the upstream. A request the
// client abandoned says nothing of the upstream and is not reported.
func (x *Exchange) Failed(err error) { x.c.failed(false, x.cfg.spec.outlier, x.ep, err) }

// End releases the request's reservations.
func (x *Exchange) End() { x.c.finish(x.cfg.transport, x.ep, true) }

// IsConnectError reports whether err is a failure to connect to an endpoint.
func IsConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}

// idlePool holds a transport's idle codec connections by endpoint address, most recently
// used last: reusing the warmest connection lets the others reach their idle timeout.
type idlePool struct {
	mu     sync.Mutex
	conns  map[string][]*Conn
	n      int
	closed bool
}

// get returns an idle connection to addr, closing those idle longer than timeout.
func (p *idlePool) get(addr string, timeout time.Duration) *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	stack := p.conns[addr]
	if len(stack) == 0 {
		return nil
	}
	for len(stack) > 0 {
		conn := stack[len(stack)-1]
		stack[len(stack)-1] = nil
		stack = stack[:len(stack)-1]
		p.n--
		if timeout > 0 && time.Since(conn.idleAt) > timeout {
			_ = conn.Close()
			continue
		}
		p.conns[addr] = stack
		conn.Reused = true
		return conn
	}
	p.conns[addr] = stack
	return nil
}

// put keeps conn unless the pool holds max connections or is closed. The oldest connection
// of its endpoint goes if it has been idle past timeout.
func (p *idlePool) put(conn *Conn, maxIdle int, timeout time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.n >= maxIdle {
		return false
	}
	if p.conns == nil {
		p.conns = map[string][]*Conn{}
	}
	conn.idleAt = time.Now()
	stack := p.conns[conn.addr]
	if len(stack) > 0 && timeout > 0 && conn.idleAt.Sub(stack[0].idleAt) > timeout {
		_ = stack[0].Close()
		stack = append(stack[:0], stack[1:]...)
		p.n--
	}
	p.conns[conn.addr] = append(stack, conn)
	p.n++
	return true
}

// drop closes the idle connections to addr.
func (p *idlePool) drop(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stack := p.conns[addr]
	for _, conn := range stack {
		_ = conn.Close()
	}
	p.n -= len(stack)
	delete(p.conns, addr)
}

// close closes every idle connection and refuses new ones.
func (p *idlePool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, stack := range p.conns {
		for _, conn := range stack {
			_ = conn.Close()
		}
	}
	p.conns, p.n = nil, 0
}
