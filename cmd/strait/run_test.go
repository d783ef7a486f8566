package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/provider/file/filetest"
)

// TestRunServesTraffic runs `strait run` as a user would: a config file with a Gateway per
// cluster and echo backends, requests through each Gateway, readiness and metrics on the
// admin port, and a clean drain on cancellation.
func TestRunServesTraffic(t *testing.T) {
	backends := map[string]int{}
	for _, cluster := range []string{"eu", "us"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: echo.Handler(echo.Identity{Cluster: cluster, Namespace: "default", Pod: "web-" + cluster}), ReadHeaderTimeout: time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		backends[cluster] = ln.Addr().(*net.TCPAddr).Port
	}
	gatewayPorts := map[string]int{"eu": freePortNumber(t), "us": freePortNumber(t)}
	manifests := func(cluster string) string {
		return filetest.Gateway("web", "HTTP", gatewayPorts[cluster], "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
` + filetest.Service("web", false, "", backends[cluster])
	}
	dir := t.TempDir()
	path := filetest.Write(t, dir, "127.0.0.1", []filetest.Cluster{
		{Name: "eu", Region: "eu-west", Manifests: manifests("eu")},
		{Name: "us", Region: "us-east", Manifests: manifests("us")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adminAddr, done := startRun(ctx, t, path)

	for cluster, port := range gatewayPorts {
		body := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/hello", port))
		var er echo.Response
		if err := json.Unmarshal([]byte(body), &er); err != nil {
			t.Fatalf("%s gateway: %v: %s", cluster, err, body)
		}
		if er.Cluster != cluster || er.Path != "/hello" {
			t.Errorf("%s gateway answered from %+v", cluster, er)
		}
	}
	metrics := httpBody(t, "http://"+adminAddr+"/metrics")
	for _, want := range []string{`strait_proxy_requests_total{`, `strait_proxy_downstream_connections{`, `node="us/default/web"`, `strait_translation_duration_seconds_count`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if cfg := httpBody(t, "http://"+adminAddr+"/debug/config"); !strings.Contains(cfg, `"eu/default/web"`) {
		t.Errorf("/debug/config lacks the eu proxy")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("run did not stop after cancellation")
	}
}

// startRun gives the config file at path free xDS and admin addresses, runs `strait run` on
// it until ctx ends, and waits until its admin server is ready. It returns the admin address
// and the channel that receives run's error when it returns.
func startRun(ctx context.Context, t *testing.T, path string) (adminAddr string, done <-chan error) {
	t.Helper()
	adminAddr = freePort(t)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "xds: %s\nadmin: %s\n", freePort(t), adminAddr)
	if err = errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	cmd := newRootCommand()
	cmd.SetArgs([]string{"run", "--config", path})
	errc := make(chan error, 1)
	go func() { errc <- cmd.ExecuteContext(ctx) }()
	waitFor(t, func() bool { return httpStatus("http://"+adminAddr+"/readyz") == http.StatusOK })
	return adminAddr, errc
}

func freePortNumber(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(port, &n)
	return n
}
