//go:build !race

package proxy_test

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// TestFastPathIdleStack checks that an idle fast-path connection costs one 4 KiB goroutine
// stack: the deepest plaintext HTTP/1.1 request path must fit in it, or every idle
// connection's goroutine keeps the 8 KiB stack it grew to (docs/benchmarks.md, memory per
// idle connection). Built without the race detector, which doubles every stack's guard;
// `make unit` runs it in a pass of its own.
func TestFastPathIdleStack(t *testing.T) {
	if os.Getenv("STRAIT_TEST_IDLE_STACK") == "" {
		// In a fresh process: stacks that earlier tests' goroutines left for reuse would hide
		// the growth, and goroutines start with the smallest stack whatever ran before.
		cmd := exec.Command(os.Args[0], "-test.run=^TestFastPathIdleStack$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "STRAIT_TEST_IDLE_STACK=1", "GODEBUG=adaptivestackstart=0")
		out, err := cmd.CombinedOutput()
		t.Logf("measured in a fresh process:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	port, _ := routeEnv(t, benchRoutes[0].rule, benchUpstream(t))
	request := func() {
		c := dialProxy(t, port)
		c.send("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
		if resp, _ := c.read("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	request() // the upstream connection, whose goroutines are not measured
	const conns = 200
	runtime.GC() // frees the stack spans that earlier goroutines left empty
	runtime.GC()
	before := stackInuse()
	for range conns {
		request() // each connection stays open, idle, until the test ends
	}
	perConn := (stackInuse() - before) / conns
	t.Logf("goroutine stack per idle connection: %d bytes", perConn)
	if perConn < 3<<10 || perConn > 6<<10 {
		t.Errorf("goroutine stack per idle connection: %d bytes, want 4 KiB (2 KiB: nothing measured; 8 KiB: the request path outgrew 4 KiB)", perConn)
	}
}

// stackInuse returns the bytes of goroutine stacks.
func stackInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}
