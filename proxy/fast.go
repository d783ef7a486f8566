package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strait-gw/strait/proxy/http1"
	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/proxy/upstream"
)

// The fast path: a downstream HTTP/1.x connection is served by its own goroutine with the
// proxy's own codec (proxy/http1). Each request is parsed into a reused struct, matched,
// changed in its field list, written on a pooled upstream keep-alive connection, and its
// response streamed back, all synchronously: no goroutine or channel per request, no
// http.Header maps.
//
// What the fast path does not do, net/http does, with the one implementation of each
// feature in http.go: HTTP/2 (an h2c preface, or ALPN h2, never reaches it), upgrades,
// Expect: 100-continue, requests that match no route, routes with redirects, direct
// responses, CORS, retries, mirrors or hash policies, and clusters that speak HTTP/2 or TLS.
// Such a request hands its connection over to the listener's net/http server, bytes already
// read included, and the connection stays there until it closes.

// Buffers of a downstream connection. The read buffer holds a typical request head (longer
// ones are gathered across fills); the write buffer comes with the request's messages.
const (
	readBufferSize  = 2 << 10
	writeBufferSize = 4 << 10
)

// messages are the parsed request and response of one exchange and the buffer the answer
// is written through. They are pooled, keeping the capacity they grew to, and taken only
// while a request is served: an idle connection holds none.
type messages struct {
	req  http1.Request
	resp http1.Response
	bw   *bufio.Writer
}

var messagePool = sync.Pool{New: func() any { return &messages{bw: bufio.NewWriterSize(nil, writeBufferSize)} }}

// fastConn is one downstream connection on the fast path.
type fastConn struct {
	bl      *boundListener
	cfg     *listenerConfig
	chain   *chainConfig
	conn    net.Conn
	tls     *tls.Conn // nil for plaintext
	release func()
	client  string // remote address, for the access log
	ip      string // remote IP, for X-Forwarded-For

	br *bufio.Reader
	// msgs is the request being served, nil while idle; req, resp and bw are its parts.
	msgs *messages
	req  *http1.Request
	resp *http1.Response
	bw   *bufio.Writer
	// host, path and query are the request's, as strings for the router and the log.
	host, path, query string
	ex                exchange
	series            seriesCache
	// h2 says the connection turned out to speak HTTP/2 (a prior-knowledge preface).
	h2 bool
	// bodyCut says the upstream answered before taking the request's whole body (see
	// earlyAnswer): the rest of it is still unread on the connection, which must close.
	bodyCut bool
	// num holds digits being written: a local array would escape through bufio.Writer.
	num [20]byte

	// idle is set while the connection waits for a request; drain interrupts only those.
	idle atomic.Bool
}

// fastConns are a listener's fast-path connections, for draining.
type fastConns struct {
	mu    sync.Mutex
	conns map[*fastConn]struct{}
	// draining: connections close after the response in flight, and idle ones at once.
	draining atomic.Bool
}

func (f *fastConns) add(c *fastConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining.Load() {
		return false
	}
	if f.conns == nil {
		f.conns = map[*fastConn]struct{}{}
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *fastConns) remove(c *fastConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// drain closes idle connections, and the others as they finish their request, until none
// is left or ctx ends; then it closes what is left.
func (f *fastConns) drain(ctx context.Context) {
	f.draining.Store(true)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		n := len(f.conns)
		for c := range f.conns {
			if c.idle.Load() {
				// Wakes the read: the connection sees draining and closes. A connection
				// that turned idle after this sees draining itself before it waits.
				_ = c.conn.SetReadDeadline(time.Now())
			}
		}
		f.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			f.mu.Lock()
			for c := range f.conns {
				_ = c.conn.Close()
			}
			f.mu.Unlock()
			return
		}
	}
}

// serveFast serves an HTTP/1.x connection (tc is its TLS side, nil for plaintext) on the
// fast path until it closes or is handed over to net/http.
func (bl *boundListener) serveFast(cfg *listenerConfig, chain *chainConfig, conn net.Conn, tc *tls.Conn, release func()) {
	c := &fastConn{bl: bl, cfg: cfg, chain: chain, conn: conn, tls: tc, release: release,
		client: conn.RemoteAddr().String()}
	if ip, _, err := net.SplitHostPort(c.client); err == nil {
		c.ip = ip
	}
	if !bl.fast.add(c) {
		_ = conn.Close()
		release()
		return
	}
	c.br = bufio.NewReaderSize(conn, readBufferSize)
	handedOver := c.serve()
	bl.fast.remove(c)
	switch {
	case c.h2:
		_ = conn.SetReadDeadline(time.Time{})
		bl.serveH2(cfg, chain, conn, c.br, release)
	case !handedOver:
		_ = conn.Close()
		release()
	}
}

// h2Preface starts every HTTP/2 connection with prior knowledge.
const h2Preface = "PRI * HTTP/2.0"

// serve reads and answers requests until the connection ends; it reports whether it handed
// the connection over to net/http instead. A connection that starts with HTTP/2's preface
// sets c.h2 and is left to serveFast.
func (c *fastConn) serve() bool {
	for first := true; ; first = false {
		if !c.awaitRequest(first) {
			return false
		}
		if first {
			if b, _ := c.br.Peek(1); b[0] == h2Preface[0] {
				if b, err := c.br.Peek(len(h2Preface)); err == nil && string(b) == h2Preface {
					c.h2 = true // served by serveFast's caller, bytes read included
					return false
				}
			}
		}
		c.takeMessages()
		if err := http1.ReadRequest(c.br, c.req, maxHeaderBytes); err != nil {
			c.refuse(err)
			c.putMessages()
			return false
		}
		if c.req.Body != http1.NoBody {
			// The header timeout covers the head only: a body streams at its own pace.
			_ = c.conn.SetReadDeadline(time.Time{})
		}
		keepAlive, handover := c.exchange()
		if handover {
			c.handover(c.req.Raw())
			c.putMessages()
			return true
		}
		c.putMessages()
		if !keepAlive {
			return false
		}
	}
}

// takeMessages takes the buffers of a request from the pool.
func (c *fastConn) takeMessages() {
	c.msgs = messagePool.Get().(*messages)
	c.req, c.resp, c.bw = &c.msgs.req, &c.msgs.resp, c.msgs.bw
	c.bw.Reset(c.conn)
}

// putMessages returns them; nothing of the request may be used afterwards.
func (c *fastConn) putMessages() {
	c.bw.Reset(nil)
	messagePool.Put(c.msgs)
	c.msgs, c.req, c.resp, c.bw = nil, nil, nil, nil
}

// awaitRequest waits for the first byte of the next request, within the idle timeout (the
// header timeout for the first request), then arms the header timeout unless the whole head
// is already buffered. It reports false when the connection should close.
func (c *fastConn) awaitRequest(first bool) bool {
	if c.br.Buffered() == 0 {
		wait := idleTimeout
		if first {
			wait = readHeaderTimeout
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
		c.idle.Store(true)
		if c.bl.fast.draining.Load() {
			return false
		}
		letPeerAnswer()
		_, err := c.br.Peek(1)
		c.idle.Store(false)
		if err != nil {
			return false
		}
		if first {
			return true // the header timeout runs from the connection's start
		}
	}
	if b, _ := c.br.Peek(c.br.Buffered()); !bytes.Contains(b, []byte("\n\r\n")) && !bytes.Contains(b, []byte("\n\n")) {
		_ = c.conn.SetReadDeadline(time.Now().Add(readHeaderTimeout))
	}
	return true
}

// refuse answers a request head that could not be read, unless the client just left.
func (c *fastConn) refuse(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, http1.ErrHeaderTooLarge):
		c.writeError(http.StatusRequestHeaderFieldsTooLarge, false)
	case errors.Is(err, http1.ErrMalformed) || errors.Is(err, http1.ErrAmbiguousFraming):
		c.bl.p.log.Debug("request refused", "listener", c.cfg.name, "client", c.client, "error", err)
		c.writeError(http.StatusBadRequest, false)
	case errors.As(err, &ne) && ne.Timeout():
		// A slow client (slowloris): closed without an answer, as net/http does.
	}
}

// handover gives the connection to the listener's net/http server; replay is what was
// already read from it beyond the reader's buffer (the head of the request being handed
// over).
func (c *fastConn) handover(replay []byte) {
	buffered, _ := c.br.Peek(c.br.Buffered())
	read := make([]byte, 0, len(replay)+len(buffered))
	read = append(append(read, replay...), buffered...)
	_ = c.conn.SetReadDeadline(time.Time{})
	// HTTP/1.x goes behind the framing check, over TLS too; net/http finds the TLS state
	// through the connection's context (tlsStateKey).
	var nc net.Conn = newFramingConn(newReplayConn(c.conn, read))
	if c.tls != nil {
		nc = &tlsFramingConn{framingConn: nc.(*framingConn), tls: c.tls}
	}
	c.bl.serveNetHTTP(c.cfg, c.chain, nc, c.release)
}

// exchange forwards one request and its answer. It reports whether the connection may carry
// another request, or that net/http must take the request (and the connection) instead.
func (c *fastConn) exchange() (keepAlive, handover bool) {
	start := time.Now()
	if !c.route() {
		return false, true
	}
	ex := &c.ex
	keepAlive = c.forward(ex, start)
	c.bl.p.record(c.cfg.name, ex, start, &c.series)
	if c.bl.p.opts.AccessLog != nil {
		c.logAccess(ex, start)
	}
	return keepAlive, false
}

// route matches the request and starts c.ex with its route and cluster. It reports false
// for a request the fast path leaves to net/http.
func (c *fastConn) route() bool {
	req := c.req
	if req.Upgrade || req.Expect || len(req.Target) == 0 || req.Target[0] != '/' {
		return false
	}
	table := c.bl.p.state.Load().tables[c.chain.http.routeConfig]
	if table == nil {
		return false
	}
	c.setTarget()
	route, params := table.MatchRequest(fastRequest{c})
	if route == nil || !c.bl.p.fastRoute(route) {
		return false
	}
	c.ex = exchange{route: route, params: params, cluster: route.PickCluster(rand.Uint64()), attempts: 1}
	return true
}

// logAccess writes the access log line of the exchange. It is kept out of exchange, whose
// stack frame every request's goroutine carries: an idle connection's goroutine stays
// within its first 4 KiB of stack only while the deepest request path fits there.
func (c *fastConn) logAccess(ex *exchange, start time.Time) {
	req := c.req
	proto := "HTTP/1.1"
	if req.Minor == 0 {
		proto = "HTTP/1.0"
	}
	c.bl.p.accessLog(context.Background(), requestInfo{method: req.Method, host: c.host, path: c.path, proto: proto,
		client: c.client, traceparent: req.Get("Traceparent")}, ex, start)
}

// setTarget sets host, path and query from the request.
func (c *fastConn) setTarget() {
	c.host = string(c.req.Host)
	target := c.req.Target
	c.query = ""
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		c.query = string(target[i+1:])
		target = target[:i]
	}
	c.path = string(target)
}

// fastRoute reports whether the fast path has everything a route needs. Every cluster of
// the route must qualify, not only the one a draw would pick: net/http draws again. HTTP/2
// requests use the same decision (serveCodec).
func (p *Proxy) fastRoute(rt *router.Route) bool {
	if rt.Redirect != nil || rt.DirectResponse != nil || rt.CORS != nil || rt.Retry != nil ||
		len(rt.Mirrors) > 0 || len(rt.HashPolicies) > 0 || len(rt.Clusters) == 0 {
		return false
	}
	for i := range rt.Clusters {
		if cl := p.upstreams.Cluster(rt.Clusters[i].Name); cl != nil && !cl.Codec() {
			return false
		}
	}
	return true
}

// forward sends the request upstream and its answer downstream; it sets ex.status and
// reports whether the downstream connection may carry another request.
func (c *fastConn) forward(ex *exchange, start time.Time) bool {
	req := c.req
	// An answer sent before the body was read leaves the body on the connection.
	canKeep := req.Body == http1.NoBody
	x, deadline, err := c.bl.p.beginExchange(context.Background(), ex, start)
	if err != nil {
		ex.status = upstreamStatus(err, ex.route)
		return c.writeError(ex.status, canKeep)
	}
	c.prepare(ex)

	conn, err := c.send(&x, deadline)
	ex.upstream = x.Endpoint().Address()
	if err != nil {
		return c.sendFailed(ex, &x, err, canKeep)
	}
	keepAlive, upstreamOK := c.respond(ex, &x, conn)
	// The upstream connection and slot go back before the last bytes go to the client, who
	// may send its next request (on any connection) as soon as it has them.
	if upstreamOK {
		if !deadline.IsZero() {
			_ = conn.SetDeadline(time.Time{})
		}
		x.Put(conn)
	} else {
		_ = conn.Close()
	}
	x.End()
	return c.bw.Flush() == nil && keepAlive
}

// sendFailed ends an exchange whose request could not be sent and answers the client (out
// of forward for the same reason as logAccess); it reports whether the connection may
// carry another request.
func (c *fastConn) sendFailed(ex *exchange, x *upstream.Exchange, err error, canKeep bool) bool {
	x.End()
	if errors.Is(err, errClientGone) {
		ex.status = statusClientClosed
		return false
	}
	x.Failed(err)
	ex.status = upstreamStatus(err, ex.route)
	c.bl.p.log.Debug("upstream error", "route", ex.route.Name, "error", err, "status", ex.status)
	return c.writeError(ex.status, canKeep)
}

// beginExchange starts the upstream exchange of a request on either fast path, which
// started at start: it finds ex.cluster and takes its reservations within the route's
// timeout, and while ctx lasts (the HTTP/2 stream's; the fast path's HTTP/1.1 requests
// cannot tell when their client leaves). The deadline is the route's (zero: none). The
// endpoint may still change while the request is sent (Exchange.Conn): ex.upstream is set
// once it was.
func (p *Proxy) beginExchange(ctx context.Context, ex *exchange, start time.Time) (x upstream.Exchange, deadline time.Time, err error) {
	cluster := p.upstreams.Cluster(ex.cluster.Name)
	if cluster == nil {
		return x, deadline, errClusterNotFound
	}
	if ex.route.Timeout > 0 {
		deadline = start.Add(ex.route.Timeout)
	}
	x, err = cluster.Begin(ctx, deadline)
	return x, deadline, err
}

// errClientGone is a request body the client stopped sending.
var errClientGone = errors.New("client went away")

// prepare turns the downstream request's fields into the upstream request's, as rewrite
// does for net/http.
func (c *fastConn) prepare(ex *exchange) {
	h := &c.req.Header
	h.StripHopByHop()
	h.Del("Host")
	h.Del("Content-Length")
	// The client's own forwarding headers are not trusted: this is the first hop.
	h.Del("Forwarded")
	h.Del("X-Forwarded-For")
	h.Del("X-Forwarded-Host")
	h.Del("X-Forwarded-Proto")
	if c.ip != "" {
		h.Add("X-Forwarded-For", c.ip)
	}
	h.Add("X-Forwarded-Host", c.host)
	if c.tls != nil {
		h.Add("X-Forwarded-Proto", "https")
	} else {
		h.Add("X-Forwarded-Proto", "http")
	}
	propagateTrace(h)
	ex.cluster.RequestHeaders.ApplyFields(h)
	ex.route.RequestHeaders.ApplyFields(h)
}

// send writes the request on a pooled connection, or on a new one when a pooled connection
// turns out to have been closed by the upstream while idle: a request that can be sent twice
// is resent when it fails on one before any answer; one that cannot is sent only on a pooled
// connection that looks open first. A new connection that cannot be made moves the request
// to another endpoint (see upstream.Exchange.Conn). It returns the connection with the
// response head read into c.resp.
func (c *fastConn) send(x *upstream.Exchange, deadline time.Time) (*upstream.Conn, error) {
	replayable := c.req.Body == http1.NoBody && idempotent(c.req.Method)
	return sendHead(x, deadline, replayable, func(conn *upstream.Conn) error {
		c.bodyCut = false
		if err := c.writeRequest(conn); err != nil {
			if !earlyAnswer(conn, err, deadline, c.readResponseHead) {
				return err
			}
			c.bodyCut = true
			return nil
		}
		return c.readResponseHead(conn)
	})
}

// earlyAnswerWait bounds the wait for an answer an upstream may have sent before it stopped
// reading a request's body; it is normally in the socket already.
const earlyAnswerWait = 100 * time.Millisecond

// earlyAnswer reports whether the upstream answered a request before taking all of it: a
// backend may answer a body it refuses (413, 401) and close, which fails the write of the
// body with err. The answer's head is then read (by readHead, into the caller's response),
// for the client to get it, as net/http's Transport passes such an answer on, instead of a
// 502/503; the connection's deadline is the request's (deadline, zero: none) again after.
func earlyAnswer(conn *upstream.Conn, err error, deadline time.Time, readHead func(*upstream.Conn) error) bool {
	if errors.Is(err, errClientGone) {
		return false
	}
	wait := time.Now().Add(earlyAnswerWait)
	if !deadline.IsZero() && deadline.Before(wait) {
		wait = deadline
	}
	_ = conn.SetReadDeadline(wait)
	if readHead(conn) != nil {
		return false
	}
	_ = conn.SetReadDeadline(deadline)
	return true
}

// sendHead runs exchange (write a request, read its response head) on a connection of x,
// for both fast paths. A reused connection that turns out closed, or fails as a stale one
// does, is replaced by a fresh one when the request can be sent again (replayable); only a
// reused connection goes round again, and the next is a new one unless the request moved to
// another endpoint, which it does a bounded number of times.
func sendHead(x *upstream.Exchange, deadline time.Time, replayable bool, exchange func(*upstream.Conn) error) (*upstream.Conn, error) {
	for fresh := false; ; fresh = true {
		conn, err := x.Conn(fresh)
		if err != nil {
			return nil, err
		}
		if conn.Reused && !replayable && conn.Closed() {
			_ = conn.Close()
			continue
		}
		if !deadline.IsZero() {
			_ = conn.SetDeadline(deadline)
		}
		if err = exchange(conn); err == nil {
			return conn, nil
		}
		_ = conn.Close()
		if errors.Is(err, errClientGone) || !conn.Reused || !replayable || !staleConn(err) {
			return nil, err
		}
	}
}

// staleConn reports whether a failure on a reused connection before any answer looks like
// the upstream having closed it while idle.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeRequest writes the request head and body on conn.
func (c *fastConn) writeRequest(conn *upstream.Conn) error {
	req, w := c.req, conn.W
	ex := &c.ex
	_, _ = w.WriteString(req.Method)
	_ = w.WriteByte(' ')
	if path, ok := ex.route.RewrittenPath(ex.params); ok {
		_, _ = w.WriteString(path)
		if c.query != "" {
			_ = w.WriteByte('?')
			_, _ = w.WriteString(c.query)
		}
	} else {
		_, _ = w.Write(req.Target)
	}
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(ex.route.ForwardedHost(ex.params))
	_, _ = w.WriteString("\r\n")
	req.Write(w, nil)
	switch req.Body {
	case http1.Length:
		_, _ = w.WriteString("Content-Length: ")
		_, _ = w.Write(strconv.AppendInt(c.num[:0], req.ContentLength, 10))
		_, _ = w.WriteString("\r\n")
	case http1.Chunked:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if err := http1.CopyBody(w, c.br, req.Body, req.ContentLength, req.Body); err != nil {
		var we *http1.WriteError
		if errors.As(err, &we) {
			return we.Err
		}
		return errors.Join(errClientGone, err)
	}
	return w.Flush()
}

// readResponseHead reads the response head, passing interim (1xx) responses on to the
// client.
func (c *fastConn) readResponseHead(conn *upstream.Conn) error {
	return readFinalHead(conn, c.resp, c.req.Method == http.MethodHead, func() error {
		c.writeStatusLine(c.resp.Status, c.resp.Reason)
		c.resp.Write(c.bw, http1.HopByHop)
		_, _ = c.bw.WriteString("\r\n")
		if err := c.bw.Flush(); err != nil {
			return errors.Join(errClientGone, err)
		}
		return nil
	})
}

// letPeerAnswer yields the processor before a read that would most likely find nothing yet
// (the next request of a client just answered, the response to a request just sent). The
// connections already runnable go first, and by the time this one reads its peer has usually
// answered: that saves the read failing with EAGAIN, the park and the netpoller's wake-up, two
// of six system calls per request under load (+26% requests/s at 256 connections on one core
// in three hand-run rounds, docs/benchmarks.md; no benchmark in the repo measures it). With
// nothing else runnable it costs a trip through the scheduler.
func letPeerAnswer() { runtime.Gosched() }

// readFinalHead reads a response head from conn into resp for both fast paths, handing
// each interim (1xx) response to interim first; head says the request was a HEAD.
func readFinalHead(conn *upstream.Conn, resp *http1.Response, head bool, interim func() error) error {
	for {
		if conn.R.Buffered() == 0 {
			letPeerAnswer()
		}
		if err := http1.ReadResponse(conn.R, resp, head, maxHeaderBytes); err != nil {
			return err
		}
		switch {
		case resp.Status == http.StatusSwitchingProtocols:
			return errors.New("upstream switched protocols without being asked to")
		case resp.Status < 200:
			if err := interim(); err != nil {
				return err
			}
			continue
		}
		return nil
	}
}

// answered records the upstream's answer and prepares its head for the client, on both fast
// paths: hop-by-hop fields and Content-Length (the writer sets its own framing) out, the
// cluster's and the route's response header modifiers applied.
func (ex *exchange) answered(x *upstream.Exchange, resp *http1.Response) {
	ex.status = resp.Status
	x.Responded(resp.Status)
	h := &resp.Header
	h.StripHopByHop()
	h.Del("Content-Length")
	ex.cluster.ResponseHeaders.ApplyFields(h)
	ex.route.ResponseHeaders.ApplyFields(h)
}

// respond writes the response whose head is in c.resp and streams its body, leaving the
// last bytes in c.bw for the caller to flush. It reports
// whether the downstream connection may carry another request, and whether the upstream
// one was read to the end of the response and may be reused.
func (c *fastConn) respond(ex *exchange, x *upstream.Exchange, conn *upstream.Conn) (keepAlive, upstreamOK bool) {
	resp := c.resp
	ex.answered(x, resp)
	h := &resp.Header

	// A body of unknown length goes chunked to an HTTP/1.1 client, and as it is, ended by
	// closing, to an HTTP/1.0 one.
	out := resp.Body
	switch {
	case out == http1.UntilClose && c.req.Minor == 1:
		out = http1.Chunked
	case out == http1.Chunked && c.req.Minor == 0:
		out = http1.UntilClose
	}
	// A request whose body the upstream did not take was not read to its end either.
	keepAlive = c.req.KeepAlive && out != http1.UntilClose && !c.bodyCut && !c.bl.fast.draining.Load()
	c.writeStatusLine(resp.Status, resp.Reason)
	h.Write(c.bw, nil)
	switch {
	case out == http1.Length || (out == http1.NoBody && resp.ContentLength >= 0):
		_, _ = c.bw.WriteString("Content-Length: ")
		_, _ = c.bw.Write(strconv.AppendInt(c.num[:0], resp.ContentLength, 10))
		_, _ = c.bw.WriteString("\r\n")
	case out == http1.Chunked:
		_, _ = c.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	c.writeConnection(keepAlive)
	_, _ = c.bw.WriteString("\r\n")
	if err := http1.CopyBody(c.bw, conn.R, resp.Body, resp.ContentLength, out); err != nil {
		// Half a response went out: the client learns of the failure by the connection
		// closing. Only a downstream failure leaves the upstream response readable, but
		// nobody would read the rest.
		c.bl.p.log.Debug("response body", "route", ex.route.Name, "error", err)
		return false, false
	}
	return keepAlive, resp.KeepAlive && resp.Body != http1.UntilClose && !c.bodyCut
}

// writeStatusLine writes "HTTP/1.1 <status> <reason>".
func (c *fastConn) writeStatusLine(status int, reason []byte) {
	_, _ = c.bw.WriteString("HTTP/1.1 ")
	_, _ = c.bw.Write(strconv.AppendInt(c.num[:0], int64(status), 10))
	_ = c.bw.WriteByte(' ')
	if len(reason) > 0 {
		_, _ = c.bw.Write(reason)
	} else {
		_, _ = c.bw.WriteString(http.StatusText(status))
	}
	_, _ = c.bw.WriteString("\r\n")
}

// writeConnection says whether the connection stays open, where the client's version would
// assume otherwise.
func (c *fastConn) writeConnection(keepAlive bool) {
	switch {
	case !keepAlive:
		_, _ = c.bw.WriteString("Connection: close\r\n")
	case c.req.Minor == 0:
		_, _ = c.bw.WriteString("Connection: keep-alive\r\n")
	}
}

// writeError answers with a status and its text, as http.Error does. keepAlive says the
// request was read entirely; the result says whether the connection may go on.
func (c *fastConn) writeError(status int, keepAlive bool) bool {
	keepAlive = keepAlive && c.req.KeepAlive && !c.bl.fast.draining.Load()
	text := http.StatusText(status)
	c.writeStatusLine(status, nil)
	_, _ = c.bw.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	_, _ = c.bw.Write(strconv.AppendInt(c.num[:0], int64(len(text)+1), 10))
	_, _ = c.bw.WriteString("\r\n")
	c.writeConnection(keepAlive)
	_, _ = c.bw.WriteString("\r\n")
	_, _ = c.bw.WriteString(text)
	_ = c.bw.WriteByte('\n')
	return c.bw.Flush() == nil && keepAlive
}

// fastRequest is the request being served as the router sees it.
type fastRequest struct{ c *fastConn }

// Method is the request method.
func (r fastRequest) Method() string { return r.c.req.Method }

// Authority is the Host field.
func (r fastRequest) Authority() string { return r.c.host }

// EscapedPath is the target's path.
func (r fastRequest) EscapedPath() string { return r.c.path }

// RawQuery is the target's query.
func (r fastRequest) RawQuery() string { return r.c.query }

// TLS reports whether the connection is TLS.
func (r fastRequest) TLS() bool { return r.c.tls != nil }

// Header returns a field's values, comma-joined.
func (r fastRequest) Header(key string) (string, bool) { return r.c.req.Joined(key) }
