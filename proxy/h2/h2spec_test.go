package h2

import (
	"io"
	"net"
	"os/exec"
	"testing"
)

// TestH2Spec runs h2spec (RFC 9113 and RFC 7541 conformance, hack/tools' pinned version,
// built through the Go module proxy on first use) against the server: none of its 145 tests
// may fail (144 pass; h2spec itself skips 6.9.2/2, the negative window, against this
// server). -v prints its report.
func TestH2Spec(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte("ok\n"))
	}))
	host, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "-modfile=../../hack/tools/go.mod", "h2spec",
		"-h", host, "-p", port, "--timeout", "5")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("h2spec: %v (its report above)", err)
	}
}
