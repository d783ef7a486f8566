package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-gw/strait/proxy/router"
	"github.com/strait-gw/strait/proxy/upstream"
)

// Limits that protect the proxy from slow or abusive clients.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	// maxRetryBody is the largest request body kept in memory so that it can be resent.
	maxRetryBody = 64 << 10
)

// statusClientClosed is logged when the client went away before the answer (nginx's 499).
const statusClientClosed = 499

// newHTTPServer returns the server of one route configuration of a listener.
func (p *Proxy) newHTTPServer(listener, routeConfig string) *http.Server {
	h := &httpHandler{p: p, listener: listener, routeConfig: routeConfig}
	h.reverse = &httputil.ReverseProxy{
		// ReverseProxy strips the X-Forwarded headers before Rewrite: prepare sets them.
		Rewrite:        h.rewrite,
		Transport:      h,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	// HTTP/2 connections go to proxy/h2's server, which hands each stream to this handler.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// httpHandler routes the requests of one route configuration.
type httpHandler struct {
	p           *Proxy
	listener    string
	routeConfig string
	reverse     *httputil.ReverseProxy
}

// exchange is what the handler knows about one request as it goes through the proxy.
type exchange struct {
	route   *router.Route
	params  router.Params
	cluster *router.WeightedCluster
	hash    *uint64
	// body holds the request body when it was buffered to allow retries.
	body     []byte
	attempts int
	status   int
	upstream string
}

// names returns the names of the exchange's route and cluster, "" for one not chosen.
func (ex *exchange) names() (route, cluster string) {
	if ex.route != nil {
		route = ex.route.Name
	}
	if ex.cluster != nil {
		cluster = ex.cluster.Name
	}
	return route, cluster
}

type exchangeKey struct{}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.TLS == nil {
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	ex := &exchange{}
	defer func() {
		h.p.record(h.listener, ex, start, nil)
		if h.p.opts.AccessLog != nil {
			h.p.accessLog(r.Context(), requestInfo{method: r.Method, host: r.Host, path: r.URL.Path, proto: r.Proto,
				client: r.RemoteAddr, traceparent: r.Header.Get("Traceparent")}, ex, start)
		}
	}()

	table := h.p.state.Load().tables[h.routeConfig]
	if table == nil {
		ex.status = http.StatusNotFound
		http.Error(w, "no route configuration", ex.status)
		return
	}
	route, params := table.Match(r)
	if route == nil {
		ex.status = http.StatusNotFound
		http.Error(w, "no route", ex.status)
		return
	}
	ex.route, ex.params = route, params
	if r.ProtoMajor == 2 && h.p.fastRoute(route) && codecRequest(r) {
		h.serveCodec(w, r, ex, start) // h2.go
		return
	}
	if route.CORS != nil {
		if handled, status, header := route.CORS.Preflight(r); handled {
			ex.status = status
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
	}
	switch {
	case route.Redirect != nil:
		ex.status = route.Redirect.StatusCode
		w.Header().Set("Location", route.Redirect.Location(r, params))
		w.WriteHeader(ex.status)
		return
	case route.DirectResponse != nil:
		ex.status = route.DirectResponse.StatusCode
		route.ResponseHeaders.Apply(w.Header())
		w.WriteHeader(ex.status)
		_, _ = io.WriteString(w, route.DirectResponse.Body) //nolint:gosec // G705: the body is configuration, not request input
		return
	}
	ex.cluster = route.PickCluster(rand.Uint64())
	if key, ok := route.HashKey(r); ok {
		ex.hash = &key
	}

	ctx := r.Context()
	if route.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, route.Timeout)
		defer cancel()
	}
	// A gRPC client gives up at its grpc-timeout, and so does its server, which resets the
	// stream then: the proxy keeps the same deadline, so that it answers DEADLINE_EXCEEDED
	// rather than mistake the server's reset for a failure.
	if d, ok := grpcTimeout(r.Header); ok && isGRPC(r) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	// A shallow copy is enough: ReverseProxy clones the request itself, and only its
	// clone (in rewrite) is modified.
	out := r.WithContext(context.WithValue(ctx, exchangeKey{}, ex))
	if r.ContentLength == 0 {
		out.Body = nil // a GET with no body must not look like one with a body upstream
	}
	if route.Retry != nil && out.Body != nil && r.ContentLength >= 0 && r.ContentLength <= maxRetryBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBody+1))
		if err != nil {
			ex.status = http.StatusBadRequest
			http.Error(w, "reading request body", ex.status)
			return
		}
		ex.body = body
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	h.reverse.ServeHTTP(w, out)
}

// rewrite turns a downstream request into the upstream one (forwarding headers, trace
// context, the route's and backend's header modifiers and rewrites), then sends the route's
// mirrors their copies.
func (h *httpHandler) rewrite(pr *httputil.ProxyRequest) {
	out, in := pr.Out, pr.In
	ex := out.Context().Value(exchangeKey{}).(*exchange)
	// The client's own forwarding headers are not trusted: this is the first hop.
	out.Header.Del("Forwarded")
	out.Header.Del("X-Forwarded-For")
	out.Header.Del("X-Forwarded-Host")
	out.Header.Del("X-Forwarded-Proto")
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		out.Header.Set("X-Forwarded-For", ip)
	}
	out.Header.Set("X-Forwarded-Host", in.Host)
	if in.TLS != nil {
		out.Header.Set("X-Forwarded-Proto", "https")
	} else {
		out.Header.Set("X-Forwarded-Proto", "http")
	}
	propagateTrace(out.Header)
	ex.cluster.RequestHeaders.Apply(out.Header)
	ex.route.RequestHeaders.Apply(out.Header)
	ex.route.RewriteRequest(out, ex.params)
	for _, m := range ex.route.Mirrors {
		if m.Sample(rand.Uint64()) {
			h.p.mirror(m.Cluster, out, ex.body)
		}
	}
}

// RoundTrip sends the request to the chosen cluster, retrying as the route allows.
func (h *httpHandler) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := req.Context().Value(exchangeKey{}).(*exchange)
	cluster := h.p.upstreams.Cluster(ex.cluster.Name)
	if cluster == nil {
		return nil, errClusterNotFound
	}
	retry := ex.route.Retry
	for attempt := 0; ; attempt++ {
		ex.attempts = attempt + 1
		resp, err := h.attempt(cluster, req, ex)
		if attempt > 0 {
			cluster.EndRetry()
		}
		if retry == nil || attempt >= retry.NumRetries || !h.retriable(req, ex, resp, err) {
			return resp, err
		}
		// The cluster's retry budget (max_retries) bounds the retries in flight: past it,
		// the failed try is the answer.
		if !cluster.BeginRetry() {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-time.After(retry.BackOff(attempt, rand.Uint64())):
		case <-req.Context().Done():
			cluster.EndRetry()
			return nil, req.Context().Err()
		}
	}
}

// attempt sends one try, bounded by the route's per-try timeout.
func (h *httpHandler) attempt(cluster *upstream.Cluster, req *http.Request, ex *exchange) (*http.Response, error) {
	try := req
	if ex.attempts > 1 {
		try = req.Clone(req.Context())
		if ex.body != nil {
			try.Body = io.NopCloser(bytes.NewReader(ex.body))
		}
	}
	var cancel context.CancelFunc = func() {}
	if r := ex.route.Retry; r != nil && r.PerTryTimeout > 0 {
		d := r.PerTryTimeout
		var ctx context.Context
		ctx, cancel = context.WithTimeout(try.Context(), d)
		try = try.WithContext(ctx)
	}
	resp, ep, err := cluster.RoundTrip(try, ex.hash)
	if ep != nil {
		ex.upstream = ep.Address()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	// The per-try deadline covers the response body too; it ends when the body is closed.
	// An upgraded connection's body is also written to: keep it writable.
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &cancelOnCloseRW{ReadWriteCloser: rwc, cancel: cancel}
	} else {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	}
	return resp, nil
}

// retriable reports whether a failed try may be sent again: the route's policy must cover the
// failure, and a request whose body went out is resent only when it was buffered.
func (h *httpHandler) retriable(req *http.Request, ex *exchange, resp *http.Response, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if req.Body != nil && ex.body == nil {
		return false // the body was streamed and cannot be sent again
	}
	if !idempotent(req.Method) && !isConnectError(err) {
		// The request may have had its effect upstream: only a connection that never
		// opened proves it did not.
		return false
	}
	if err != nil {
		return retriableError(ex.route.Retry, err)
	}
	return ex.route.Retry.RetriableStatus(resp.StatusCode)
}

func (h *httpHandler) modifyResponse(resp *http.Response) error {
	ex := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	ex.status = resp.StatusCode
	if ex.cluster != nil {
		ex.cluster.ResponseHeaders.Apply(resp.Header)
	}
	ex.route.ResponseHeaders.Apply(resp.Header)
	if ex.route.CORS != nil {
		ex.route.CORS.ResponseHeaders(resp.Request, resp.Header)
	}
	return nil
}

var errClusterNotFound = errors.New("cluster not found")

// idempotent reports whether sending a request twice has the effect of sending it once.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retriableError reports whether a try that got no response may be sent again under p.
func retriableError(p *router.RetryPolicy, err error) bool {
	if isConnectError(err) {
		return p.On&(router.RetryConnectFailure|router.RetryResetBeforeRequest) != 0
	}
	return p.On&router.RetryReset != 0
}

// isConnectError reports whether err is a failure to open a connection, before anything
// was sent.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// upstreamError answers a request that got no response from upstream.
func (h *httpHandler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	ex := ctx.Value(exchangeKey{}).(*exchange)
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The client went away; nobody reads an answer, and it says nothing of the upstream.
		// The error is not always context.Canceled: the upstream stream may have been reset
		// first, as canceling the request does.
		ex.status = statusClientClosed
		return
	}
	ex.status = upstreamStatus(err, ex.route)
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		// Past the request's deadline, whatever failed (an upstream that gave up at the
		// same deadline and reset the stream, say) failed because time ran out. The
		// deadline's own timer may not have fired yet: the clock decides.
		ex.status = http.StatusGatewayTimeout
	}
	h.p.log.Debug("upstream error", "route", ex.route.Name, "error", err, "status", ex.status)
	if isGRPC(r) {
		writeGRPCError(w, ex.status)
		return
	}
	http.Error(w, http.StatusText(ex.status), ex.status)
}

// upstreamStatus is the status that answers a request that got no response from upstream.
func upstreamStatus(err error, route *router.Route) int {
	switch {
	case errors.Is(err, upstream.ErrOverflow):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, errClusterNotFound):
		return route.ClusterNotFoundResponseCode
	}
	return http.StatusServiceUnavailable
}

// cancelOnClose ends a per-try deadline when the response body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// Close closes the body and ends the try's deadline.
func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// cancelOnCloseRW is cancelOnClose for the body of an upgraded connection.
type cancelOnCloseRW struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

// Close closes the connection and ends the try's deadline.
func (c *cancelOnCloseRW) Close() error {
	err := c.ReadWriteCloser.Close()
	c.cancel()
	return err
}

// mirror sends a copy of a request to a cluster and forgets it: the answer is discarded and
// the original request never waits. Requests whose body was not buffered are mirrored
// without it.
func (p *Proxy) mirror(clusterName string, req *http.Request, body []byte) {
	cluster := p.upstreams.Cluster(clusterName)
	if cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	m := req.Clone(ctx)
	m.Body = nil
	m.ContentLength = 0
	if body != nil {
		m.Body = io.NopCloser(bytes.NewReader(body))
		m.ContentLength = int64(len(body))
	}
	go func() {
		defer cancel()
		resp, _, err := cluster.RoundTrip(m, nil)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
}

// record counts a finished request in the metrics. last, if not nil, keeps the series of
// the previous request of a connection: the next one usually has the same labels, and
// finding a series by its labels costs more than the rest of counting.
func (p *Proxy) record(listener string, ex *exchange, start time.Time, last *seriesCache) {
	if last != nil && last.route == ex.route && last.cluster == ex.cluster && last.status == ex.status && last.listener == listener {
		last.requests.Inc()
		last.duration.Observe(time.Since(start).Seconds())
		return
	}
	route, cluster := ex.names()
	requests := p.metrics.requests.WithLabelValues(listener, route, cluster, strconv.Itoa(ex.status))
	duration := p.metrics.duration.WithLabelValues(route)
	requests.Inc()
	duration.Observe(time.Since(start).Seconds())
	if last != nil {
		*last = seriesCache{listener: listener, route: ex.route, cluster: ex.cluster, status: ex.status, requests: requests, duration: duration}
	}
}

// seriesCache is the metric series of a connection's last request, by its labels.
type seriesCache struct {
	listener string
	route    *router.Route
	cluster  *router.WeightedCluster
	status   int
	requests prometheus.Counter
	duration prometheus.Observer
}

// requestInfo is what the access log says of a request besides its exchange.
type requestInfo struct {
	method, host, path, proto, client, traceparent string
}

// accessLog writes a finished request's line to the access log.
func (p *Proxy) accessLog(ctx context.Context, r requestInfo, ex *exchange, start time.Time) {
	route, cluster := ex.names()
	p.opts.AccessLog.LogAttrs(ctx, slog.LevelInfo, "request",
		slog.String("method", r.method), slog.String("host", r.host), slog.String("path", r.path),
		slog.String("protocol", r.proto), slog.Int("status", ex.status), slog.Duration("duration", time.Since(start)),
		slog.String("route", route), slog.String("cluster", cluster), slog.String("upstream", ex.upstream),
		slog.Int("attempts", ex.attempts), slog.String("client", r.client),
		slog.String("traceparent", r.traceparent))
}
