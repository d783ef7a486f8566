package proxy_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestDrain stops a proxy while a request is in flight: the request completes, and the
// listener stops accepting new connections.
func TestDrain(t *testing.T) {
	started := make(chan struct{}, 1)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(time.Second)
		w.WriteHeader(http.StatusOK)
	})
	port, e := routeEnv(t, `{backendRefs: [{name: svc0, port: 80}]}`, slow)
	result := make(chan int, 1)
	go func() {
		resp, err := http.Get(url(port, "/slow")) //nolint:noctx // a test request
		if err != nil {
			result <- 0
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	<-started
	for _, stop := range e.stop {
		stop()
	}
	if status := <-result; status != http.StatusOK {
		t.Fatalf("the request in flight got %d, want 200 after the drain", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the drained proxy still accepts connections")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
