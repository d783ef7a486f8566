package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// syncBuffer is a bytes.Buffer that the command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUp runs `up` for one cluster, uses the kubeconfig it prints, then ends it as Ctrl-C
// would and checks that the processes are gone.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"up", "--clusters", "solo", "--dir", dir}, &out, io.Discard) }()

	kubeconfig := filepath.Join(dir, "solo", "kubeconfig")
	deadline := time.After(5 * time.Minute) // the first run on a machine builds the binaries
	for !strings.Contains(out.String(), "Ctrl-C stops") {
		select {
		case err := <-done:
			t.Fatalf("up ended before the cluster was ready: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("cluster not ready:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), "export KUBECONFIG="+kubeconfig+"\n") {
		t.Errorf("output has no export KUBECONFIG=%s line:\n%s", kubeconfig, out.String())
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("using the printed kubeconfig: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("up: %v", err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if cmdline, err := os.ReadFile(p); err == nil && bytes.Contains(cmdline, []byte(dir)) {
			t.Errorf("still running after up returned: %s", bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")))
		}
	}
}

func TestUsage(t *testing.T) {
	var errOut bytes.Buffer
	if err := run(t.Context(), []string{"down"}, io.Discard, &errOut); err == nil {
		t.Error("run accepted a command other than up")
	}
	if !strings.Contains(errOut.String(), "-clusters") {
		t.Errorf("no usage with the flags:\n%s", errOut.String())
	}
}
