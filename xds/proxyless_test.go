package xds_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	xdsgrpc "google.golang.org/grpc/xds"

	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/translator"
	"github.com/strait-gw/strait/xds"
)

// echoServer is a gRPC backend that names itself in every response.
type echoServer struct {
	testgrpc.UnimplementedTestServiceServer
	id string
}

func (s *echoServer) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{ServerId: s.id}, nil
}

// startBackend serves an echoServer on a loopback port and returns its port.
func startBackend(t *testing.T, id string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &echoServer{id: id})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

// writeClusters loads clusters us and eu (one region each) whose manifests are given.
func writeClusters(t *testing.T, dir string, manifests map[string]string) *translator.Input {
	t.Helper()
	return filetest.Input(t, dir, "", []filetest.Cluster{
		{Name: "eu", Region: "eu-west", Network: "local", Manifests: manifests["eu"]},
		{Name: "us", Region: "us-east", Network: "local", Manifests: manifests["us"]},
	})
}

// echoService is the exported, h2c Service "echo" of a cluster, with one endpoint on a
// loopback port.
func echoService(port int) string {
	return filetest.Service("echo", true, "kubernetes.io/h2c", port)
}

// usGateway is a Gateway in us with a GRPCRoute splitting 80/20 between us's echo and eu's
// (through the mirror Service echo-eu).
var usGateway = filetest.Gateway("grpc", "HTTP", 50051, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: grpc}]
  hostnames: [echo.grpc.local]
  rules:
  - matches: [{method: {service: grpc.testing.TestService}}]
    backendRefs:
    - {name: echo, port: 80, weight: 80}
    - {name: echo-eu, port: 80, weight: 20}
`

// TestProxylessGRPC proves Strait's xDS with a client nobody here wrote: grpc-go's own xDS
// resolver and balancers resolve a GRPCRoute served by Strait's server, split real RPCs
// across two clusters' backends by the route's weights, and follow an endpoint change
// without restarting.
func TestProxylessGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	usPort, euPort := startBackend(t, "us"), startBackend(t, "eu")
	dir := t.TempDir()
	manifests := map[string]string{
		"us": usGateway + "---\n" + echoService(usPort),
		"eu": echoService(euPort),
	}
	in := writeClusters(t, dir, manifests)
	out := translator.Translate(in)

	srv := startServer(ctx, t)
	if err := srv.Update(out.Proxies); err != nil {
		t.Fatal(err)
	}

	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "us/default/grpc", "metadata": {%q: true}}
}`, srv.Addr(), xds.ProxylessMetadataKey)
	resolver, err := xdsgrpc.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///echo.grpc.local:50051",
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	// 1000 RPCs at 80/20: the count for us is binomial with mean 800 and standard
	// deviation 12.6; five deviations either side make a false failure a one in a million
	// event.
	const calls = 1000
	counts := map[string]int{}
	for range calls {
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("RPC failed: %v", err)
		}
		counts[resp.GetServerId()]++
	}
	t.Logf("split over %d RPCs: %v", calls, counts)
	if counts["us"]+counts["eu"] != calls {
		t.Fatalf("RPCs answered by unexpected backends: %v", counts)
	}
	if us := counts["us"]; us < 737 || us > 863 {
		t.Fatalf("us got %d of %d RPCs, want 800 ± 63 (80/20 split)", us, calls)
	}

	// Move us's endpoint to a new backend: only the EndpointSlice changes, the update takes
	// the endpoint fast path, and the same client follows it.
	newPort := startBackend(t, "us-moved")
	manifests["us"] = usGateway + "---\n" + echoService(newPort)
	in2 := writeClusters(t, dir, manifests)
	if !translator.SameExceptEndpoints(in, in2) {
		t.Fatal("an EndpointSlice change should be endpoints-only")
	}
	if err := srv.UpdateEndpoints(translator.RefreshEndpoints(in2, out.Proxies)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("RPC failed during the endpoint change: %v", err)
		}
		if resp.GetServerId() == "us-moved" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client never reached the moved endpoint")
		}
	}
	// Once moved, the old us backend gets nothing.
	for range 200 {
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if id := resp.GetServerId(); !strings.HasPrefix(id, "us-moved") && id != "eu" {
			t.Fatalf("RPC reached %q after its endpoint was removed", id)
		}
	}
}
