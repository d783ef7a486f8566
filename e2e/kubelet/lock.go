package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockDir holds the machine-wide locks on bridge names and pod CIDRs. Two kubelets (say,
// in two test binaries of one `go test ./...`) must never share either: the second would
// delete the first's bridge as a leftover, or route the same addresses twice. The kernel
// drops a flock when its process dies, so a crashed run never blocks the next.
const lockDir = "/run/lock/strait-kubelet"

// machineLock is a held flock.
type machineLock struct{ files []*os.File }

// lockNetwork takes the locks on the bridge and the CIDR, waiting while another process
// holds them, until ctx ends.
func lockNetwork(ctx context.Context, n *network) (*machineLock, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	l := &machineLock{}
	// Always the same order, so that two kubelets never hold one lock each.
	for _, name := range []string{"cidr-" + strings.ReplaceAll(n.cidr.String(), "/", "_"), "bridge-" + n.bridge} {
		f, err := flockWait(ctx, filepath.Join(lockDir, name+".lock"))
		if err != nil {
			l.release()
			return nil, fmt.Errorf("%s is in use by another kubelet on this machine: %w", strings.ReplaceAll(name, "_", "/"), err)
		}
		l.files = append(l.files, f)
	}
	return l, nil
}

func flockWait(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *machineLock) release() {
	for _, f := range l.files {
		_ = f.Close()
	}
	l.files = nil
}
