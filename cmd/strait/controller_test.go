package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCommand runs `strait args...` until the test ends, then stops it and fails the test if
// it did not exit cleanly. The context it returns bounds the command (30s), for the test's own
// requests too.
func startCommand(t *testing.T, args ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	cmd := newRootCommand()
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("strait %s: %v", args[0], err)
		}
	})
	return ctx
}

var controllerManifests = filetest.Gateway("web", "HTTP", 8080, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
---
` + filetest.Service("app", false, "")

func endpointsManifest(ip string) string {
	return fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: default, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [%s]}]
`, ip)
}

// TestControllerServesFiles runs `strait controller --config` as a user would: it serves the
// manifests over ADS, becomes ready, and a changed EndpointSlice file reaches the connected
// proxy as an endpoint-only push.
func TestControllerServesFiles(t *testing.T) {
	dir := t.TempDir()
	xdsAddr, adminAddr := freePort(t), freePort(t)
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("strait.yaml", "apiVersion: strait.dev/v1alpha1\nkind: StraitConfig\nclusters:\n- {name: us, manifests: us}\n")
	write("us/app.yaml", controllerManifests)
	write("us/endpoints.yaml", endpointsManifest("10.0.0.1"))

	ctx := startCommand(t, "controller", "--config", filepath.Join(dir, "strait.yaml"), "--xds", xdsAddr, "--admin", adminAddr)

	waitFor(t, func() bool { return httpStatus("http://"+adminAddr+"/readyz") == http.StatusOK })

	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "us/default/web"}
	responses := make(chan *discoveryv3.DiscoveryResponse, 16)
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				close(responses)
				return
			}
			responses <- resp
		}
	}()
	for _, typ := range []string{resourcev3.ListenerType, resourcev3.EndpointType} {
		if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			t.Fatal(err)
		}
	}
	versions := map[string]string{}
	var endpoints string
	receive := func() *discoveryv3.DiscoveryResponse {
		t.Helper()
		select {
		case resp, ok := <-responses:
			if !ok {
				t.Fatal("stream closed")
			}
			versions[resp.TypeUrl] = resp.VersionInfo
			// ACK, so that the server sends the next version.
			if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resp.TypeUrl, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}); err != nil {
				t.Fatal(err)
			}
			if resp.TypeUrl == resourcev3.EndpointType {
				endpoints = fmt.Sprint(resp.Resources)
			}
			return resp
		case <-ctx.Done():
			t.Fatal("no xDS response")
		}
		return nil
	}
	for versions[resourcev3.ListenerType] == "" || versions[resourcev3.EndpointType] == "" {
		receive()
	}
	if !strings.Contains(endpoints, "10.0.0.1") {
		t.Fatalf("endpoints do not hold the EndpointSlice's address: %s", endpoints)
	}
	listenerVersion := versions[resourcev3.ListenerType]

	write("us/endpoints.yaml", endpointsManifest("10.0.0.2"))
	resp := receive()
	if resp.TypeUrl != resourcev3.EndpointType {
		t.Fatalf("an EndpointSlice change pushed %s, want only endpoints", resp.TypeUrl)
	}
	if !strings.Contains(endpoints, "10.0.0.2") {
		t.Fatalf("endpoints after the change: %s", endpoints)
	}
	if versions[resourcev3.ListenerType] != listenerVersion {
		t.Fatal("listener version changed on an endpoint-only update")
	}

	body := httpBody(t, "http://"+adminAddr+"/metrics")
	for _, metric := range []string{`strait_translation_duration_seconds_count{kind="endpoints"}`, `strait_translation_duration_seconds_count{kind="full"}`} {
		if !strings.Contains(body, metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
	if cfg := httpBody(t, "http://"+adminAddr+"/debug/config"); !strings.Contains(cfg, "us/default/web") {
		t.Errorf("/debug/config does not show the proxy: %.200s", cfg)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpStatus(url string) int {
	resp, err := http.Get(url) //nolint:noctx // a short poll in a test
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test against a local server
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
