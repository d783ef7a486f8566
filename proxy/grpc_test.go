package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// grpcBackend answers unary and server-streaming calls, naming itself, and sets a trailer.
type grpcBackend struct {
	testgrpc.UnimplementedTestServiceServer
	id string
}

func (s *grpcBackend) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if req.GetResponseStatus().GetCode() != 0 {
		return nil, status.Error(codes.Code(req.GetResponseStatus().GetCode()), req.GetResponseStatus().GetMessage())
	}
	if req.GetResponseSize() > 0 { // asks for a slow answer
		select {
		case <-time.After(time.Duration(req.GetResponseSize()) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs("served-by", s.id))
	return &testgrpc.SimpleResponse{ServerId: s.id}, nil
}

func (s *grpcBackend) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	for range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: []byte(s.id)}}); err != nil {
			return err
		}
	}
	return nil
}

// grpcRouteEnv serves a GRPCRoute for grpc.local that sends the methods of grpcService to
// be over h2c, and returns the Gateway's port.
func grpcRouteEnv(t *testing.T, grpcService string, be *backend) int {
	t.Helper()
	port := freePort(t)
	manifests := gateway("web", "HTTP", port, "") + fmt.Sprintf(`---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: test, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [grpc.local]
  rules:
  - matches: [{method: {service: %s}}]
    backendRefs: [{name: grpc, port: 80}]
---
`, grpcService) + service("grpc", false, "kubernetes.io/h2c", be)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})
	return port
}

// TestGRPCRoute carries gRPC through the proxy over h2c both ways: unary calls with
// trailers, server streaming, status codes and deadlines.
func TestGRPCRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &grpcBackend{id: "grpc-us-1"})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	be := &backend{port: ln.Addr().(*net.TCPAddr).Port}

	port := grpcRouteEnv(t, "grpc.testing.TestService", be)

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("grpc.local"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var trailer metadata.MD
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetServerId() != "grpc-us-1" || len(trailer.Get("served-by")) == 0 {
		t.Errorf("unary: server %q, trailer %v", resp.GetServerId(), trailer)
	}

	stream, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: make([]*testgrpc.ResponseParameters, 5),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
		n++
	}
	if n != 5 {
		t.Errorf("streamed %d messages, want 5", n)
	}

	_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "nope"}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("status: got %v, want NotFound from the backend", err)
	}

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	_, err = client.UnaryCall(short, &testgrpc.SimpleRequest{ResponseSize: 2000})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("deadline: got %v, want DeadlineExceeded", err)
	}
}

// TestGRPCLocalReplies checks what the proxy answers a gRPC client itself: past the client's
// grpc-timeout, DEADLINE_EXCEEDED even though the server ignores the deadline; for a server
// that resets the stream, UNAVAILABLE. Both are trailers-only gRPC responses (HTTP 200), which
// a gRPC client reads as the status they carry. The client here is plain HTTP/2 and has no
// deadline of its own: what it gets is what the proxy said.
func TestGRPCLocalReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Protocols: protocols,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/test.Svc/Slow": // ignores its deadline; answers only when the test ends
				select {
				case <-release:
				case <-r.Context().Done():
				}
			case "/test.Svc/Reset":
				panic(http.ErrAbortHandler)
			}
		})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	be := &backend{port: ln.Addr().(*net.TCPAddr).Port}

	port := grpcRouteEnv(t, "test.Svc", be)

	client := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 10 * time.Second}
	call := func(method, timeout string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/test.Svc/%s", port, method), http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "grpc.local"
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		if timeout != "" {
			req.Header.Set("Grpc-Timeout", timeout)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tt := range []struct {
		method, timeout string
		want            codes.Code
	}{
		{"Slow", "100m", codes.DeadlineExceeded},
		{"Reset", "", codes.Unavailable},
	} {
		resp := call(tt.method, tt.timeout)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/grpc" ||
			resp.Header.Get("Grpc-Status") != strconv.Itoa(int(tt.want)) {
			t.Errorf("%s: HTTP %d, content-type %q, grpc-status %q; want HTTP 200, application/grpc, grpc-status %d (%v)",
				tt.method, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Grpc-Status"), tt.want, tt.want)
		}
	}
}
