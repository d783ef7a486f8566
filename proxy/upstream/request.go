package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

var (
	// ErrNoHealthyUpstream is returned (wrapped) when no endpoint may take a request.
	ErrNoHealthyUpstream = errors.New("no healthy upstream")
	// ErrClusterClosed is returned by a cluster that an update removed.
	ErrClusterClosed = errors.New("cluster removed")
)

// RoundTrip sends req to an endpoint the load balancer picks (by *hash for hash-based
// policies; nil picks at random), setting req.URL's scheme and host. It enforces the
// circuit breakers (an overflow is an ErrOverflow) and feeds outlier detection with the
// outcome, except when the request's context was canceled: a client that went away says
// nothing about the upstream. The response body must be closed; a 101 Switching Protocols
// response's body is an io.ReadWriteCloser. The endpoint is returned whenever one was tried:
// as with Exchange.Conn, a request that cannot connect to its endpoint goes to another one
// (up to 3 in all), whatever its method, unless more of its body was read than could be
// kept.
func (c *Cluster) RoundTrip(req *http.Request, hash *uint64) (*http.Response, *Endpoint, error) {
	cfg, ep, err := c.begin(req.Context(), time.Time{}, hash)
	if err != nil {
		return nil, nil, err
	}
	h1 := !cfg.spec.transport.http2
	resp, ep, err := c.roundTrip(cfg, ep, req, hash)
	if err != nil {
		c.finish(cfg.transport, ep, h1)
		c.failed(errors.Is(req.Context().Err(), context.Canceled), cfg.spec.outlier, ep, err)
		return nil, ep, err
	}
	c.responded(cfg.spec.outlier, ep, resp.StatusCode)
	if resp.Body == http.NoBody {
		c.finish(cfg.transport, ep, h1)
		return resp, ep, nil
	}
	b := &body{ReadCloser: resp.Body, c: c, ep: ep, tr: cfg.transport, h1: h1}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradedBody{body: b, w: rw}
	} else {
		resp.Body = b
	}
	return resp, ep, nil
}

// roundTrip sends req to ep, or to other endpoints while it cannot connect (see reconnect),
// and again when net/http says that nothing of it was written; it returns the endpoint of
// the last try.
func (c *Cluster) roundTrip(cfg *clusterConfig, ep *Endpoint, req *http.Request, hash *uint64) (*http.Response, *Endpoint, error) {
	held := holdBody(req)
	if held != nil {
		defer held.release()
	}
	var tried triedEndpoints
	tried.add(ep)
	try := req
	for resent := 0; ; {
		try.URL.Scheme, try.URL.Host = cfg.transport.scheme, ep.addr
		resp, err := cfg.transport.rt.RoundTrip(try)
		connect := err != nil && IsConnectError(err)
		again := err != nil && req.Context().Err() == nil && (connect || (closedIdle(err) && resent < maxEndpointsTried))
		if !again || (held != nil && !held.rewind()) {
			return resp, ep, err
		}
		if connect {
			next := c.reconnect(cfg, &tried, hash)
			if next == nil {
				return nil, ep, err
			}
			ep = next
		} else {
			resent++
		}
		// The transport may keep a request it failed: the next try is a copy.
		try = req.Clone(req.Context())
	}
}

// closedIdle reports whether net/http failed a request because the upstream closed the
// pooled connection it took before net/http wrote the request on it (its read goroutine saw
// the connection end while it expected no response): nothing of the request was sent, but
// net/http resends only GETs and the like itself. The error is not exported; its text is
// net/http's errServerClosedIdle.
func closedIdle(err error) bool {
	return err.Error() == "http: server closed idle connection"
}

// begin takes a request's circuit breaker reservations (max_requests, and for HTTP/1.1 a
// connection slot, waiting in line until ctx ends or deadline passes) and picks its
// endpoint.
func (c *Cluster) begin(ctx context.Context, deadline time.Time, hash *uint64) (*clusterConfig, *Endpoint, error) {
	cfg := c.cfg.Load()
	if cfg == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrClusterClosed, c.name)
	}
	lim := &cfg.spec.limits
	if !c.requests.tryAdd(lim.requests) {
		c.stats.overflow.requests.Add(1)
		return nil, nil, overflowError("max_requests", lim.requests)
	}
	// An HTTP/1.1 request occupies a connection: wait for one within max_connections.
	h1 := !cfg.spec.transport.http2
	if h1 {
		if err := c.slots.acquire(ctx, deadline, lim.pending); err != nil {
			c.requests.done()
			if errors.Is(err, errPendingOverflow) {
				c.stats.overflow.pending.Add(1)
				return nil, nil, overflowError("max_pending_requests", lim.pending)
			}
			return nil, nil, err
		}
	}
	ep := c.snap.Load().pick(hash)
	if ep == nil {
		c.release(h1)
		c.stats.noHealthy.Add(1)
		return nil, nil, fmt.Errorf("%w: %s", ErrNoHealthyUpstream, c.name)
	}
	ep.active.Add(1)
	ep.requests.Add(1)
	return cfg, ep, nil
}

// failed accounts for a request that got no response.
// canceled says the client went away, which says nothing of the upstream.
func (c *Cluster) failed(canceled bool, spec *outlierSpec, ep *Endpoint, err error) {
	if errors.Is(err, ErrOverflow) || canceled {
		return
	}
	c.stats.responses[0].Add(1)
	var ce *connectError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		c.connectFailed(spec, ep)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		ep.failures.Add(1)
		c.recordOutcome(spec, ep, http.StatusGatewayTimeout)
	default:
		ep.failures.Add(1)
		c.recordOutcome(spec, ep, http.StatusBadGateway)
	}
}

// connectFailed accounts for a failure to connect to ep: a connect failure, and a 503 for
// outlier detection. A request that goes on to another endpoint (reconnect) gets no other
// accounting; one that does not also counts as having got no response (failed).
func (c *Cluster) connectFailed(spec *outlierSpec, ep *Endpoint) {
	c.stats.connectFailures.Add(1)
	ep.failures.Add(1)
	c.recordOutcome(spec, ep, http.StatusServiceUnavailable)
}

// responded accounts for a response from ep.
func (c *Cluster) responded(spec *outlierSpec, ep *Endpoint, status int) {
	c.stats.responses[min(5, max(1, status/100))].Add(1)
	c.recordOutcome(spec, ep, status)
}

// release returns a request's breaker reservations.
func (c *Cluster) release(h1 bool) {
	c.requests.done()
	if h1 {
		c.slots.release()
	}
}

// finish ends a request on ep.
func (c *Cluster) finish(tr *transport, ep *Endpoint, h1 bool) {
	ep.active.Add(-1)
	c.release(h1)
	if tr.retired.Load() {
		// The connection may just have gone idle in a pool nobody uses any more.
		tr.rt.CloseIdleConnections()
	}
}

// body ends its request when read to the end or closed.
type body struct {
	io.ReadCloser
	c    *Cluster
	ep   *Endpoint
	tr   *transport
	h1   bool
	done atomic.Bool
}

// Read reads the response body, ending the request at its end or on an error.
func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

// Close closes the response body and ends the request.
func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

func (b *body) end() {
	if b.done.CompareAndSwap(false, true) {
		b.c.finish(b.tr, b.ep, b.h1)
	}
}

// upgradedBody is the body of a 101 response: the upgraded connection, in both directions.
type upgradedBody struct {
	*body
	w io.Writer
}

// Write sends on the upgraded connection.
func (b *upgradedBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// DialTCP opens a TCP connection to an endpoint the load balancer picks, for TCP routes and
// TLS passthrough. The connection is the dialer's own (a *net.TCPConn with the default
// dialer), so the kernel can splice it; it counts against max_connections until closed.
// A failure to connect feeds outlier detection, and the connection goes to another endpoint
// as an HTTP request does (see reconnect): the client's connection is not failed while
// another endpoint may take it.
func (c *Cluster) DialTCP(ctx context.Context, hash *uint64) (net.Conn, error) {
	cfg := c.cfg.Load()
	if cfg == nil {
		return nil, fmt.Errorf("%w: %s", ErrClusterClosed, c.name)
	}
	if cfg.spec.tls != nil {
		return nil, fmt.Errorf("cluster %s originates TLS; DialTCP returns raw connections", c.name)
	}
	maxConns := cfg.spec.limits.connections
	if !c.tcp.reserve(maxConns) {
		c.stats.overflow.connections.Add(1)
		return nil, overflowError("max_connections", maxConns)
	}
	ep := c.snap.Load().pick(hash)
	if ep == nil {
		c.tcp.unreserve(nil)
		c.stats.noHealthy.Add(1)
		return nil, fmt.Errorf("%w: %s", ErrNoHealthyUpstream, c.name)
	}
	ep.requests.Add(1)
	ep.active.Add(1) // while connecting, as reconnect expects
	var tried triedEndpoints
	tried.add(ep)
	var conn net.Conn
	var err error
	for {
		dctx, cancel := context.WithTimeout(ctx, cfg.spec.transport.connectTimeout)
		conn, err = c.dial(dctx, ep.addr)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		next := c.reconnect(cfg, &tried, hash)
		if next == nil {
			break
		}
		ep = next
	}
	ep.active.Add(-1)
	c.tcp.unreserve(conn)
	if err != nil {
		c.failed(errors.Is(ctx.Err(), context.Canceled), cfg.spec.outlier, ep, err)
		return nil, err
	}
	c.recordOutcome(cfg.spec.outlier, ep, http.StatusOK)
	return conn, nil
}

// BeginRetry reserves a retry against the cluster's max_retries breaker (Envoy's default 3
// applies without circuit breakers) and reports whether the router may retry; each true
// must be followed by EndRetry once the retry finishes.
func (c *Cluster) BeginRetry() bool {
	cfg := c.cfg.Load()
	if cfg == nil {
		return false
	}
	if !c.retries.tryAdd(cfg.spec.limits.retries) {
		c.stats.overflow.retries.Add(1)
		return false
	}
	return true
}

// EndRetry releases a retry reserved by BeginRetry.
func (c *Cluster) EndRetry() { c.retries.done() }
