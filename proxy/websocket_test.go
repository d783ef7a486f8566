package proxy_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/strait-gw/strait/provider/file/filetest"
)

// TestWebSocket upgrades a connection through the proxy and echoes messages both ways.
func TestWebSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: websocket.Handler(func(c *websocket.Conn) {
		var msg string
		for websocket.Message.Receive(c, &msg) == nil {
			_ = websocket.Message.Send(c, "echo: "+msg)
		}
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	be := &backend{port: ln.Addr().(*net.TCPAddr).Port}

	port := freePort(t)
	manifests := gateway("web", "HTTP", port, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ws, namespace: default}
spec:
  parentRefs: [{name: web}]
  hostnames: [ws.local]
  rules: [{backendRefs: [{name: ws, port: 80}]}]
---
` + service("ws", false, "kubernetes.io/ws", be)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})

	cfg, err := websocket.NewConfig("ws://ws.local/chat", "http://ws.local/")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = tcp.SetDeadline(time.Now().Add(10 * time.Second))
	ws, err := websocket.NewClient(cfg, tcp)
	if err != nil {
		t.Fatalf("upgrade through the proxy: %v", err)
	}
	defer ws.Close()
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != "echo: "+msg {
			t.Errorf("got %q", got)
		}
	}
}
