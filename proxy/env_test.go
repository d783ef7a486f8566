package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/proxy"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

// env is a control plane and the proxies of its Gateways, on loopback.
type env struct {
	t       testing.TB
	ctx     context.Context
	dir     string
	xds     *xds.Server
	last    *translator.Output
	lastIn  *translator.Input
	proxies map[string]*proxy.Proxy
	// stop stops one proxy (SIGTERM in a real process).
	stop map[string]context.CancelFunc
}

// newEnv translates the clusters, serves them over xDS and starts one proxy per Gateway,
// returning once every proxy has its configuration.
func newEnv(t testing.TB, clusters []filetest.Cluster, opts ...func(*proxy.Options)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), proxies: map[string]*proxy.Proxy{}, stop: map[string]context.CancelFunc{}}
	e.xds = xds.NewServer("127.0.0.1:0", prometheus.NewRegistry())
	if err := e.xds.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.xds.Start(ctx) }()
	e.update(clusters)
	stopped := make(chan struct{})
	for _, p := range e.last.Proxies {
		o := proxy.Options{XDS: e.xds.Addr(), Node: p.Node, DrainTimeout: 5 * time.Second}
		for _, opt := range opts {
			opt(&o)
		}
		px := proxy.New(o)
		e.proxies[p.Node] = px
		pctx, stop := context.WithCancel(ctx)
		e.stop[p.Node] = stop
		go func() {
			if err := px.Start(pctx); err != nil {
				t.Errorf("proxy %s: %v", p.Node, err)
			}
			stopped <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range e.proxies {
			<-stopped
		}
		if err := <-done; err != nil {
			t.Errorf("xds server: %v", err)
		}
	})
	for node, px := range e.proxies {
		select {
		case <-px.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("proxy %s never got its configuration", node)
		}
	}
	return e
}

// update translates the clusters again and publishes the result, through the endpoint fast
// path when only EndpointSlices changed, as the control plane does.
func (e *env) update(clusters []filetest.Cluster) {
	e.t.Helper()
	in := filetest.Input(e.t, e.dir, "127.0.0.1", clusters)
	var err error
	if e.lastIn != nil && translator.SameExceptEndpoints(e.lastIn, in) {
		e.last = &translator.Output{Proxies: translator.RefreshEndpoints(in, e.last.Proxies), Statuses: e.last.Statuses}
		err = e.xds.UpdateEndpoints(e.last.Proxies)
	} else {
		e.last = translator.Translate(in)
		err = e.xds.Update(e.last.Proxies)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.lastIn = in
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend is a running echo server.
type backend struct {
	port int
	srv  *http.Server
}

// startEcho serves an echo backend on a loopback port until the test ends or stop is called.
func startEcho(t *testing.T, cluster, pod string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{port: ln.Addr().(*net.TCPAddr).Port, srv: &http.Server{
		Handler:           echo.Handler(echo.Identity{Cluster: cluster, Namespace: "default", Pod: pod}),
		ReadHeaderTimeout: 5 * time.Second,
	}}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) stop() { _ = b.srv.Close() }

// service returns a Service with an EndpointSlice per backend (see filetest.Service).
func service(name string, export bool, appProtocol string, backends ...*backend) string {
	ports := make([]int, len(backends))
	for i, b := range backends {
		ports[i] = b.port
	}
	return filetest.Service(name, export, appProtocol, ports...)
}

// gateway is filetest.Gateway.
var gateway = filetest.Gateway

// get sends a request through a proxy and decodes the echo answer (zero for non-echo answers).
func get(t *testing.T, client *http.Client, url, host string, header http.Header) (int, echo.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var er echo.Response
	_ = json.Unmarshal(body, &er)
	return resp.StatusCode, er
}

func url(port int, path string) string { return "http://127.0.0.1:" + strconv.Itoa(port) + path }
