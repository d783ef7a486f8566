package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// deployer plays the part a Gateway's infrastructure provisioner plays in a real cluster
// (a Deployment per Gateway): it runs one `strait proxy` process per Gateway of the
// GatewayClass, started when the Gateway appears and killed when it goes. The proxy binds
// wherever its xDS listeners say: the Gateway's own address from the controller's pool.
type deployer struct {
	binary, xds, cluster, class, logDir string
	gw                                  gwclient.Interface

	mu      sync.Mutex
	proxies map[string]*proxyProcess // by namespace/name
	wg      sync.WaitGroup
}

// proxyProcess is a running `strait proxy`; exited closes when it has exited.
type proxyProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// run reconciles the proxies with the Gateways every 200 ms until ctx ends, then stops them.
func (d *deployer) run(ctx context.Context, t *testing.T) {
	d.proxies = map[string]*proxyProcess{}
	d.wg.Go(func() {
		defer d.stopAll()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := d.reconcile(ctx); err != nil && ctx.Err() == nil {
				t.Logf("deployer: %v", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

func (d *deployer) reconcile(ctx context.Context) error {
	list, err := d.gw.GatewayV1().Gateways("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing Gateways: %w", err)
	}
	want := map[string]bool{}
	for _, g := range list.Items {
		if string(g.Spec.GatewayClassName) != d.class || g.DeletionTimestamp != nil {
			continue
		}
		key := g.Namespace + "/" + g.Name
		want[key] = true
		if d.running(key) {
			continue
		}
		if err := d.start(key); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for key, p := range d.proxies {
		if !want[key] {
			stop(p.cmd)
			delete(d.proxies, key)
		}
	}
	return nil
}

// running says whether key's proxy runs, forgetting one that exited (it is started again).
func (d *deployer) running(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.proxies[key]
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		delete(d.proxies, key)
		return false
	default:
		return true
	}
}

func (d *deployer) start(key string) error {
	logPath := filepath.Join(d.logDir, "proxy-"+strings.ReplaceAll(key, "/", "-")+".log")
	cmd, err := startProcess(d.binary, logPath, "proxy", "--xds", d.xds, "--node", d.cluster+"/"+key, "--admin", "127.0.0.1:0")
	if err != nil {
		return err
	}
	p := &proxyProcess{cmd: cmd, exited: make(chan struct{})}
	d.mu.Lock()
	d.proxies[key] = p
	d.mu.Unlock()
	d.wg.Go(func() {
		_ = cmd.Wait()
		close(p.exited)
	})
	return nil
}

func (d *deployer) stopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for key, p := range d.proxies {
		stop(p.cmd)
		delete(d.proxies, key)
	}
}

// wait returns once the deployer and every proxy it started have stopped.
func (d *deployer) wait() { d.wg.Wait() }

// startProcess starts binary with args, its output appended to logPath; it dies with the
// test binary.
func startProcess(binary, logPath string, args ...string) (*exec.Cmd, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", filepath.Base(binary), args[0], err)
	}
	return cmd, nil
}

// stop ends a process with SIGTERM (a proxy drains), then SIGKILL after 5 seconds.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		time.Sleep(5 * time.Second)
		_ = cmd.Process.Kill()
	}()
}
