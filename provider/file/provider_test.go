package file

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait-gw/strait/translator"
)

const waitFor = 5 * time.Second

// gatewayManifest returns a Gateway named name.
func gatewayManifest(name string) string {
	return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ` + name + `
spec:
  gatewayClassName: strait
  listeners:
  - {name: http, protocol: HTTP, port: 80}
`
}

// startProvider starts a provider for the configuration in dir and returns its inputs,
// its reload errors, and a function that stops it and returns Start's error.
func startProvider(t *testing.T, dir string) (<-chan *translator.Input, <-chan error, func() error) {
	t.Helper()
	cfg, err := Load(filepath.Join(dir, "strait.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	p := New(cfg, Options{
		Debounce: 20 * time.Millisecond,
		OnError:  func(err error) { errs <- err },
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
	})
	if p.Name() != "file-provider" {
		t.Errorf("Name() = %q", p.Name())
	}
	inputs := p.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			t.Error("Start did not return")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	return inputs, errs, stop
}

// gateways lists the names of the Gateways of every cluster, as cluster/name.
func gateways(in *translator.Input) []string {
	var names []string
	for _, cr := range in.Clusters {
		for _, gw := range cr.Gateways {
			names = append(names, cr.Cluster.Name+"/"+gw.Name)
		}
	}
	return names
}

// waitInput waits for an Input whose gateways are want, skipping intermediate ones.
func waitInput(t *testing.T, inputs <-chan *translator.Input, want ...string) *translator.Input {
	t.Helper()
	deadline := time.After(waitFor)
	var last []string
	for {
		select {
		case in, ok := <-inputs:
			if !ok {
				t.Fatalf("inputs closed; want gateways %v", want)
			}
			last = gateways(in)
			if strings.Join(last, ",") == strings.Join(want, ",") {
				return in
			}
		case <-deadline:
			t.Fatalf("no input with gateways %v; last had %v", want, last)
		}
	}
}

func TestProviderWatch(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"strait.yaml":   strings.ReplaceAll(oneClusterConfig, "name: c", "name: us"),
		"m/a/gw.yaml":   gatewayManifest("a"),
		"eu/.keep":      "",
		"eu/.ignored.y": "",
	})
	inputs, errs, stop := startProvider(t, dir)
	waitInput(t, inputs, "us/a")

	// A file in a subdirectory created after the start.
	writeTree(t, dir, map[string]string{"m/new/deeper/gw.yaml": gatewayManifest("b")})
	waitInput(t, inputs, "us/a", "us/b")

	// A broken edit keeps the last good Input and reports the error at its line.
	broken := strings.Replace(gatewayManifest("b"), "spec:", "spec:\n  bogus: 1", 1)
	writeTree(t, dir, map[string]string{"m/new/deeper/gw.yaml": broken})
	select {
	case err := <-errs:
		want := filepath.Join(dir, "m", "new", "deeper", "gw.yaml") + `:6: unknown field "spec.bogus"`
		if err.Error() != want || !errors.As(err, new(ErrorList)) {
			t.Errorf("reload error %q, want ErrorList %q", err, want)
		}
	case <-time.After(waitFor):
		t.Fatal("broken edit not reported")
	}
	select {
	case in := <-inputs:
		t.Fatalf("input published after a broken edit: gateways %v", gateways(in))
	default:
	}

	// The fix is published, although it equals the last good Input.
	writeTree(t, dir, map[string]string{"m/new/deeper/gw.yaml": gatewayManifest("b")})
	waitInput(t, inputs, "us/a", "us/b")

	// A change of the config file adds a cluster, whose directory is watched from then on.
	cfg := strings.ReplaceAll(oneClusterConfig, "name: c", "name: us") + "- name: eu\n  manifests: eu\n"
	writeTree(t, dir, map[string]string{"strait.yaml": cfg})
	in := waitInput(t, inputs, "us/a", "us/b")
	if len(in.Clusters) != 2 || in.Clusters[0].Cluster.Name != "eu" {
		t.Fatalf("clusters after config change: %+v", in.Clusters)
	}
	writeTree(t, dir, map[string]string{"eu/gw.yaml": gatewayManifest("c")})
	waitInput(t, inputs, "eu/c", "us/a", "us/b")

	// Removing a file publishes again.
	if err := os.RemoveAll(filepath.Join(dir, "m", "new")); err != nil {
		t.Fatal(err)
	}
	waitInput(t, inputs, "eu/c", "us/a")

	// A manifests directory that disappears is an error; once it is back, it is read again.
	if err := os.RemoveAll(filepath.Join(dir, "eu")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "clusters[1].manifests") {
			t.Errorf("reload error %q, want one about clusters[1].manifests", err)
		}
	case <-time.After(waitFor):
		t.Fatal("removed manifests directory not reported")
	}
	writeTree(t, dir, map[string]string{"eu/gw.yaml": gatewayManifest("d")})
	waitInput(t, inputs, "eu/d", "us/a")

	if err := stop(); err != nil {
		t.Errorf("Start: %v", err)
	}
	if _, ok := <-inputs; ok {
		t.Error("inputs not closed after Start returned")
	}
}

func TestProviderIgnoresUnrelatedChanges(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"strait.yaml": oneClusterConfig, "m/gw.yaml": gatewayManifest("a")})
	inputs, errs, _ := startProvider(t, dir)
	waitInput(t, inputs, "c/a")

	// Hidden files, files beside the config file and rewrites with the same content
	// publish nothing.
	writeTree(t, dir, map[string]string{
		"m/.gw.yaml.swp": "not: [yaml",
		"notes.yaml":     "not: [yaml",
		"m/gw.yaml":      gatewayManifest("a"),
	})
	select {
	case in := <-inputs:
		t.Errorf("input published: gateways %v", gateways(in))
	case err := <-errs:
		t.Errorf("reload error: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestProviderFirstLoadFails(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"strait.yaml": oneClusterConfig, "m/gw.yaml": "kind: Gateway\n"})
	inputs, _, stop := startProvider(t, dir)
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "gw.yaml:1: apiVersion and kind are required") {
		t.Errorf("Start: %v, want the manifest's error", err)
	}
	if _, ok := <-inputs; ok {
		t.Error("input published, or inputs not closed")
	}
}
