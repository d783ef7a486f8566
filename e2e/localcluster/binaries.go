package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the paths of the programs a cluster runs.
type Binaries struct {
	Etcd                  string
	KubeAPIServer         string
	KubeControllerManager string
}

// buildScript is hack/kube/build.sh relative to the repository root.
var buildScript = filepath.Join("hack", "kube", "build.sh")

// FindBinaries returns the binaries in dir when dir is not empty. Otherwise it runs
// hack/kube/build.sh of the Strait repository that contains the working directory, which
// builds what is missing into its cache (minutes the first time, a few milliseconds after)
// and names the binaries; the build's progress goes to stderr.
func FindBinaries(ctx context.Context, dir string) (Binaries, error) {
	if dir != "" {
		b := Binaries{
			Etcd:                  filepath.Join(dir, "etcd"),
			KubeAPIServer:         filepath.Join(dir, "kube-apiserver"),
			KubeControllerManager: filepath.Join(dir, "kube-controller-manager"),
		}
		for _, p := range []string{b.Etcd, b.KubeAPIServer, b.KubeControllerManager} {
			if _, err := os.Stat(p); err != nil {
				return Binaries{}, fmt.Errorf("binaries: %w", err)
			}
		}
		return b, nil
	}
	root, err := repoRoot()
	if err != nil {
		return Binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, buildScript))
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return Binaries{}, fmt.Errorf("%s: %w", buildScript, err)
	}
	var b Binaries
	for _, p := range strings.Fields(out.String()) {
		switch filepath.Base(p) {
		case "etcd":
			b.Etcd = p
		case "kube-apiserver":
			b.KubeAPIServer = p
		case "kube-controller-manager":
			b.KubeControllerManager = p
		}
	}
	if b.Etcd == "" || b.KubeAPIServer == "" || b.KubeControllerManager == "" {
		return Binaries{}, fmt.Errorf("%s named %q, not etcd, kube-apiserver and kube-controller-manager", buildScript, out.String())
	}
	return b, nil
}

// repoRoot walks up from the working directory to the directory holding hack/kube/build.sh:
// tests run in their package's directory, `go run` usually in the repository root.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, buildScript)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no " + buildScript + " in the working directory or above: run inside the Strait repository, or set Options.BinDir")
		}
		dir = parent
	}
}
