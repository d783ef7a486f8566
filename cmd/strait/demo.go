package main

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-gw/strait/e2e/echo"
	"github.com/strait-gw/strait/provider/file"
)

// demoTemplateFS holds the templates of the demo's config file and manifests.
//
//go:embed demo/*.tmpl
var demoTemplateFS embed.FS

// demoTemplates are the parsed templates, by file name.
var demoTemplates = template.Must(template.New("demo").ParseFS(demoTemplateFS, "demo/*.tmpl"))

// The hostnames the demo's traffic asks for at the us Gateway.
const (
	demoCanaryHost   = "podinfo.local"
	demoFailoverHost = "failover.podinfo.local"
)

const (
	// demoWindow is how many whole seconds of traffic the live table sums.
	demoWindow = 5
	// demoPodsPerCluster is how many podinfo pods (echo servers) each cluster runs.
	demoPodsPerCluster = 2
	// demoReadyTimeout bounds how long the demo waits for its Gateways to serve.
	demoReadyTimeout = 30 * time.Second
	// demoRequestTimeout bounds each request of the demo's own traffic.
	demoRequestTimeout = 2 * time.Second
	// demoMaxRate bounds --rate.
	demoMaxRate = 500
	// demoEvents is how many of the latest key events the live table shows.
	demoEvents = 3
)

// demoClusterSpec describes one simulated member cluster.
type demoClusterSpec struct {
	name, region, zone string
	// port is the Gateway's default port, used when it is free.
	port int
	// key kills and restores the cluster's pods.
	key string
	// canary, if set, is the cluster that gets 10% of podinfo.local at this Gateway.
	canary string
	// failover says whether this Gateway serves failover.podinfo.local from the ServiceImport.
	failover bool
}

// demoClusterSpecs are the demo's clusters, in display order; the first one's Gateway
// carries the demo's traffic.
var demoClusterSpecs = []demoClusterSpec{
	{name: "us", region: "us-east", zone: "us-east-1a", port: 8080, key: "u", canary: "eu", failover: true},
	{name: "eu", region: "eu-west", zone: "eu-west-1a", port: 8081, key: "e"},
	{name: "ap", region: "ap-south", zone: "ap-south-1a", port: 8082, key: "a"},
}

// demoOptions are the demo's flags.
type demoOptions struct {
	// duration stops the demo after this long; 0 runs until the context ends.
	duration time.Duration
	// rate is the requests per second the demo sends to each of its two hostnames.
	rate int
	// quiet turns the live table off.
	quiet bool
	// ports are the Gateway ports by cluster (0: any free port); portsSet says whether
	// they were given with --ports, which then holds only the clusters given.
	ports    map[string]int
	portsSet bool
	// adminPort is the admin server's port; adminPortSet says whether the user chose it.
	adminPort    int
	adminPortSet bool
	// endpointDelay is how long after a cluster's pods are killed its EndpointSlices mark
	// them not ready; negative: never.
	endpointDelay time.Duration
	// keep keeps the demo's directory (config, manifests, log) at exit.
	keep bool
}

// newDemoCommand returns `strait demo`.
func newDemoCommand() *cobra.Command {
	opts := demoOptions{ports: map[string]int{}}
	for _, s := range demoClusterSpecs {
		opts.ports[s.name] = s.port
	}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run three simulated clusters with echo backends, a canary and a failover to watch",
		Long: `demo is the quickstart playground in one command. It starts three simulated member
clusters, us (us-east), eu (eu-west) and ap (ap-south), each with two podinfo pods (echo
servers in this process answering JSON that names their cluster, namespace and pod) and a
Gateway on 127.0.0.1, writes them as a Strait config and manifests to a temporary directory,
and runs them like 'strait run' does.

At the us Gateway, podinfo.local is a 90/10 canary between us's podinfo and eu's, and
failover.podinfo.local is the podinfo ServiceImport: us first, then the other clusters.
The demo sends its own traffic there and shows, every second, where the requests of the
last 5 seconds landed. Type a letter and Enter: u kills or restores us's pods (their
listeners close; EndpointSlices mark them not ready after --endpoint-delay, as Kubernetes
would), e and a do the same for eu and ap, q quits. The Gateways take the default ports
8080, 8081 and 8082 when they are free, other free ports otherwise.`,
		Example: `  strait demo
  strait demo --ports us=9080,eu=9081,ap=9082 --rate 50
  strait demo --duration 30s --quiet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.portsSet = cmd.Flags().Changed("ports")
			opts.adminPortSet = cmd.Flags().Changed("admin-port")
			if err := opts.validate(); err != nil {
				return err
			}
			return runDemo(cmd.Context(), opts, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.duration, "duration", 0, "stop after this long (0: until Ctrl-C or q)")
	f.IntVar(&opts.rate, "rate", 20, "requests per second the demo sends to each of its two hostnames")
	f.BoolVar(&opts.quiet, "quiet", false, "no live table: print the setup and key events only")
	f.StringToIntVar(&opts.ports, "ports", opts.ports, "Gateway ports by cluster (0: any free port); the defaults fall back to free ports when taken")
	f.IntVar(&opts.adminPort, "admin-port", 9901, "admin server port on 127.0.0.1 (0: any free port; the default falls back to a free one)")
	f.DurationVar(&opts.endpointDelay, "endpoint-delay", 2*time.Second, "how long after pods are killed their EndpointSlices mark them not ready (negative: never, leaving failover to the proxy's health checking)")
	f.BoolVar(&opts.keep, "keep", false, "keep the demo's directory (config, manifests, log) at exit")
	return cmd
}

// validate checks the flags.
func (o *demoOptions) validate() error {
	if o.duration < 0 {
		return fmt.Errorf("--duration must not be negative")
	}
	if o.rate < 1 || o.rate > demoMaxRate {
		return fmt.Errorf("--rate must be between 1 and %d", demoMaxRate)
	}
	seen := map[int]string{}
	for name, port := range o.ports {
		if !slices.ContainsFunc(demoClusterSpecs, func(s demoClusterSpec) bool { return s.name == name }) {
			return fmt.Errorf("--ports: unknown cluster %q (the clusters are us, eu and ap)", name)
		}
		if port < 0 || port > 65535 {
			return fmt.Errorf("--ports: %s=%d is not a port", name, port)
		}
		if other, dup := seen[port]; dup && port != 0 {
			return fmt.Errorf("--ports: %s and %s both ask for port %d", other, name, port)
		}
		seen[port] = name
	}
	if o.adminPort < 0 || o.adminPort > 65535 {
		return fmt.Errorf("--admin-port: %d is not a port", o.adminPort)
	}
	return nil
}

// demo is one run of `strait demo`.
type demo struct {
	opts     demoOptions
	dir      string
	config   string
	logPath  string
	admin    string
	clusters []*demoCluster
	stats    *demoStats
	start    time.Time

	// out is the demo's output; outMu serializes writes to it.
	outMu sync.Mutex
	out   io.Writer
	// live says whether out is a terminal that gets the redrawn table.
	live bool
	// events are the latest key events, for the live table.
	events []string
	// keys says whether the interactive keys are available (stdin not at its end).
	keys bool
}

// demoCluster is one simulated member cluster.
type demoCluster struct {
	demoClusterSpec
	gatewayPort int
	dir         string

	// mu guards the pods' state and the EndpointSlices written for it.
	mu   sync.Mutex
	pods []*demoPod
	// down says the pods are killed; since is when they were killed or last restored.
	down  bool
	since time.Time
	// notReady says the EndpointSlices mark the pods not ready.
	notReady bool
	// timer marks the pods not ready after the endpoint delay, unless gen changed since:
	// each kill, restore and the cleanup move it on.
	timer *time.Timer
	gen   int
}

// demoPod is one podinfo pod: an echo server on a loopback port that stays the same when
// the pod is killed and restored.
type demoPod struct {
	name string
	port int
	srv  *http.Server // nil while the pod is down
}

// runDemo runs the demo until ctx ends, the duration runs out or q is typed, then drains.
func runDemo(ctx context.Context, opts demoOptions, in io.Reader, out io.Writer) (err error) {
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	d := &demo{opts: opts, out: out, stats: newDemoStats(), start: time.Now()}
	d.live = !opts.quiet && demoIsTerminal(out)
	defer func() {
		if cerr := d.cleanup(err != nil); err == nil {
			err = cerr
		}
	}()
	if err := d.setup(); err != nil {
		return err
	}

	// The pipeline logs through slog's default logger; the demo's output is for the table.
	logFile, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	prevLogger := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logFile, nil)))
	defer slog.SetDefault(prevLogger)

	cfg, err := file.Load(d.config)
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// pipelineErr is set before pipelineDone is closed.
	var pipelineErr error
	pipelineDone := make(chan struct{})
	go func() {
		defer close(pipelineDone)
		pipelineErr = runAllInOne(ctx, cfg, nil)
	}()
	if err := d.waitReady(ctx, pipelineDone, &pipelineErr); err != nil {
		cancel()
		<-pipelineDone
		if ctx.Err() != nil {
			return nil // interrupted, or out of time, while starting
		}
		return err
	}

	d.keys = demoKeysAvailable(in)
	d.printIntro()
	var wg sync.WaitGroup
	wg.Go(func() { d.sendTraffic(ctx) })
	wg.Go(func() { d.display(ctx) })
	if d.keys {
		// Not waited for: a read from a terminal cannot be interrupted.
		go d.readKeys(ctx, in, cancel)
	}
	select {
	case <-ctx.Done():
		<-pipelineDone
	case <-pipelineDone:
		cancel()
	}
	wg.Wait()
	d.printSummary()
	return pipelineErr
}

// setup picks the ports, starts the pods and writes the config and manifests.
func (d *demo) setup() error {
	dir, err := os.MkdirTemp("", "strait-demo-")
	if err != nil {
		return err
	}
	d.dir = dir
	d.config = filepath.Join(dir, "strait.yaml")
	d.logPath = filepath.Join(dir, "strait.log")

	var held demoPortHolder
	defer held.release()
	for _, spec := range demoClusterSpecs {
		c := &demoCluster{demoClusterSpec: spec, dir: filepath.Join(dir, "clusters", spec.name)}
		d.clusters = append(d.clusters, c)
		want, given := d.opts.ports[spec.name]
		if !given {
			want = spec.port
		}
		explicit := given && d.opts.portsSet
		if c.gatewayPort, err = held.pick(want, explicit); err != nil {
			return fmt.Errorf("%s Gateway: %w", spec.name, err)
		}
		for i := range demoPodsPerCluster {
			pod := &demoPod{name: fmt.Sprintf("podinfo-%s-%d", spec.name, i+1)}
			if err := pod.start(spec.name); err != nil {
				return fmt.Errorf("%s pod: %w", pod.name, err)
			}
			c.pods = append(c.pods, pod)
		}
	}
	adminPort, err := held.pick(d.opts.adminPort, d.opts.adminPortSet)
	if err != nil {
		return fmt.Errorf("admin server: %w", err)
	}
	xdsPort, err := held.pick(0, false)
	if err != nil {
		return fmt.Errorf("xds server: %w", err)
	}
	d.admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort))

	type clusterData struct {
		Name, Region, Zone string
		GatewayPort        int
		Canary             string
		Failover           bool
	}
	var clusters []clusterData
	for _, c := range d.clusters {
		data := clusterData{Name: c.name, Region: c.region, Zone: c.zone, GatewayPort: c.gatewayPort, Canary: c.canary, Failover: c.failover}
		clusters = append(clusters, data)
		if err := os.MkdirAll(c.dir, 0o750); err != nil {
			return err
		}
		for name, tmpl := range map[string]string{"gateway.yaml": "gateway.yaml.tmpl", "routes.yaml": "routes.yaml.tmpl"} {
			if err := demoWriteTemplate(filepath.Join(c.dir, name), tmpl, data); err != nil {
				return err
			}
		}
		c.mu.Lock()
		err := c.writeEndpoints()
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	// The ports are free again for the pipeline to bind once setup returns.
	return demoWriteTemplate(d.config, "strait.yaml.tmpl", map[string]any{
		"Clusters": clusters,
		"XDS":      net.JoinHostPort("127.0.0.1", strconv.Itoa(xdsPort)),
		"Admin":    d.admin,
	})
}

// cleanup stops the pods and removes the demo's directory, unless --keep or a failure asks
// to keep it.
func (d *demo) cleanup(failed bool) error {
	for _, c := range d.clusters {
		c.mu.Lock()
		c.gen++
		if c.timer != nil {
			c.timer.Stop()
		}
		for _, p := range c.pods {
			p.stop()
		}
		c.mu.Unlock()
	}
	if d.dir == "" {
		return nil
	}
	if d.opts.keep || failed {
		d.printf("The demo's config, manifests and log are in %s\n", d.dir)
		return nil
	}
	return os.RemoveAll(d.dir)
}

// demoWriteTemplate renders the named template to path, replacing the file atomically so
// that the file provider never reads half of it.
func demoWriteTemplate(path, name string, data any) error {
	var b strings.Builder
	if err := demoTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return err
	}
	// A hidden name: the file provider skips it.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// demoPortHolder picks distinct free loopback ports, holding each open until release.
type demoPortHolder struct{ held []net.Listener }

// pick returns want if it is free (or, when want is 0, any free port). A busy port is an
// error if explicit, and replaced by a free one otherwise.
func (h *demoPortHolder) pick(want int, explicit bool) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(want)))
	if err != nil && explicit {
		return 0, fmt.Errorf("port %d is not free: %w", want, err)
	}
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return 0, err
		}
	}
	h.held = append(h.held, ln)
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// release closes the held listeners, freeing their ports.
func (h *demoPortHolder) release() {
	for _, ln := range h.held {
		_ = ln.Close()
	}
	h.held = nil
}

// start serves the pod's echo server, on its port if it had one, on a free port otherwise.
func (p *demoPod) start(cluster string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))
	if err != nil {
		return err
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	id := echo.Identity{Cluster: cluster, Namespace: "default", Pod: p.name, Service: "podinfo"}
	p.srv = &http.Server{Handler: echo.Handler(id), ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(p.srv)
	return nil
}

// stop closes the pod's listener and connections at once, like a killed process.
func (p *demoPod) stop() {
	if p.srv != nil {
		_ = p.srv.Close()
		p.srv = nil
	}
}

// writeEndpoints writes the cluster's podinfo Service and EndpointSlices. c.mu is held.
func (c *demoCluster) writeEndpoints() error {
	type podData struct {
		Name  string
		Port  int
		Ready bool
	}
	data := struct {
		Cluster string
		Pods    []podData
	}{Cluster: c.name}
	for _, p := range c.pods {
		data.Pods = append(data.Pods, podData{Name: p.name, Port: p.port, Ready: !c.notReady})
	}
	return demoWriteTemplate(filepath.Join(c.dir, "podinfo.yaml"), "podinfo.yaml.tmpl", data)
}

// toggle kills the cluster's pods if they are up and restores them otherwise; the keys
// call it. Killing closes the pods' listeners and connections at once; the EndpointSlices
// mark the pods not ready after the endpoint delay, as Kubernetes would once it sees the
// pods' containers gone. Restoring reopens the listeners on the same ports and marks the
// pods ready again.
func (d *demo) toggle(name string) error {
	i := slices.IndexFunc(d.clusters, func(c *demoCluster) bool { return c.name == name })
	if i < 0 {
		return fmt.Errorf("no cluster %q", name)
	}
	c := d.clusters[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !c.down {
		for _, p := range c.pods {
			p.stop()
		}
		c.down, c.since = true, time.Now()
		switch delay := d.opts.endpointDelay; {
		case delay < 0:
			d.event("%s: pods killed; EndpointSlices stay ready (--endpoint-delay < 0)", name)
		case delay == 0:
			d.event("%s: pods killed", name)
			d.markNotReadyLocked(c)
		default:
			d.event("%s: pods killed; EndpointSlices say not ready in %s", name, delay)
			gen := c.gen
			c.timer = time.AfterFunc(delay, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.gen == gen {
					d.markNotReadyLocked(c)
				}
			})
		}
		return nil
	}
	for _, p := range c.pods {
		if err := p.start(name); err != nil {
			d.event("%s: cannot restore %s on port %d: %v", name, p.name, p.port, err)
			return err
		}
	}
	c.down, c.since = false, time.Now()
	if c.notReady {
		c.notReady = false
		if err := c.writeEndpoints(); err != nil {
			d.event("%s: cannot write EndpointSlices: %v", name, err)
			return err
		}
	}
	// The proxy keeps endpoints it ejected out of load balancing for its ejection time,
	// even once they answer again: failover traffic comes back only then.
	d.event("%s: pods restored; failover returns after the proxy's ejection time", name)
	return nil
}

// markNotReadyLocked marks the cluster's pods not ready in its EndpointSlices. c.mu is held.
func (d *demo) markNotReadyLocked(c *demoCluster) {
	c.notReady = true
	if err := c.writeEndpoints(); err != nil {
		d.event("%s: cannot write EndpointSlices: %v", c.name, err)
		return
	}
	d.event("%s: EndpointSlices say the pods are not ready", c.name)
}

// readKeys reads a letter per line until in ends: the clusters' keys toggle their pods, q
// quits. At the end of in (no terminal, as in CI) the keys are simply unavailable.
func (d *demo) readKeys(ctx context.Context, in io.Reader, quit context.CancelFunc) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if ctx.Err() != nil {
			return
		}
		key := strings.ToLower(strings.TrimSpace(sc.Text()))
		if key == "" {
			continue
		}
		if key == "q" {
			d.event("quitting")
			quit()
			return
		}
		i := slices.IndexFunc(demoClusterSpecs, func(s demoClusterSpec) bool { return s.key == key })
		if i < 0 {
			d.event("unknown key %q: %s", key, demoKeysHelp())
			continue
		}
		_ = d.toggle(demoClusterSpecs[i].name) // toggle reports its errors as events
	}
	d.outMu.Lock()
	d.keys = false
	d.outMu.Unlock()
}

// demoKeysHelp lists the keys.
func demoKeysHelp() string {
	var keys, names []string
	for _, s := range demoClusterSpecs {
		keys, names = append(keys, s.key), append(names, s.name)
	}
	return fmt.Sprintf("%s kill/restore %s's pods; q quits (letter, then Enter)", strings.Join(keys, ", "), strings.Join(names, ", "))
}

// waitReady waits until the admin server is ready and every Gateway serves podinfo.local
// from its own cluster. It fails if the pipeline stops first (done is closed, *pipelineErr
// says why), after demoReadyTimeout, or when ctx ends.
func (d *demo) waitReady(parent context.Context, done <-chan struct{}, pipelineErr *error) error {
	ctx, cancel := context.WithTimeout(parent, demoReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	ready := func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.admin+"/readyz", http.NoBody)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		for _, c := range d.clusters {
			r, err := demoRequest(ctx, client, c.gateway(), demoCanaryHost)
			if err != nil || (c.canary == "" && r.Cluster != c.name) {
				return false
			}
		}
		return true
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-done:
			err := *pipelineErr
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("strait: %w (log: %s)", err, d.logPath)
		case <-ctx.Done():
			if err := parent.Err(); err != nil {
				return err
			}
			return fmt.Errorf("the Gateways did not serve within %s; see the log %s", demoReadyTimeout, d.logPath)
		case <-tick.C:
		}
	}
	return nil
}

// gateway returns the address of the cluster's Gateway.
func (c *demoCluster) gateway() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.gatewayPort))
}

// demoRequest sends GET / for host to the Gateway at addr and returns the echo answer; an
// answer other than 2xx is an error naming the status.
func demoRequest(ctx context.Context, client *http.Client, addr, host string) (echo.Response, error) {
	var r echo.Response
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", http.NoBody)
	if err != nil {
		return r, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return r, demoStatusError(resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return r, fmt.Errorf("answer: %w", err)
	}
	return r, nil
}

// demoStatusError is an answer with a status other than 2xx.
type demoStatusError int

func (e demoStatusError) Error() string { return "HTTP " + strconv.Itoa(int(e)) }

// demoErrorReason names the kind of a failed request in a few characters.
func demoErrorReason(err error) string {
	var status demoStatusError
	var netErr net.Error
	switch {
	case errors.As(err, &status):
		return status.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	default:
		return "error"
	}
}

// sendTraffic sends rate requests per second for each of the two hostnames to the first
// cluster's Gateway until ctx ends, and records where each landed.
func (d *demo) sendTraffic(ctx context.Context) {
	client := &http.Client{
		Timeout:   demoRequestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	addr := d.clusters[0].gateway()
	// At most two seconds' worth of requests are in flight: beyond that the Gateway is too
	// slow to count, and the excess is recorded as errors rather than piling up.
	inFlight := make(chan struct{}, 4*d.opts.rate)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Second / time.Duration(d.opts.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, host := range []string{demoCanaryHost, demoFailoverHost} {
			select {
			case inFlight <- struct{}{}:
			default:
				d.stats.record(time.Now(), host, "", "overload")
				continue
			}
			wg.Go(func() {
				defer func() { <-inFlight }()
				r, err := demoRequest(ctx, client, addr, host)
				switch {
				case ctx.Err() != nil:
					// Stopping: the request says nothing of the Gateway.
				case err != nil:
					d.stats.record(time.Now(), host, "", demoErrorReason(err))
				default:
					d.stats.record(time.Now(), host, r.Cluster, "")
				}
			})
		}
	}
}

// demoStats counts the demo's requests per hostname, per second.
type demoStats struct {
	mu    sync.Mutex
	hosts map[string]*demoHostStats
}

// demoHostStats are one hostname's counts: a ring of the latest seconds and the totals.
type demoHostStats struct {
	ring  [demoWindow + 2]demoCounts
	total demoCounts
}

// demoCounts counts requests: answers per cluster and errors per reason.
type demoCounts struct {
	// sec is the Unix second a ring slot counts.
	sec      int64
	answers  map[string]int
	errors   map[string]int
	requests int
}

func newDemoStats() *demoStats { return &demoStats{hosts: map[string]*demoHostStats{}} }

// add adds o to c.
func (c *demoCounts) add(o *demoCounts) {
	if c.answers == nil {
		c.answers, c.errors = map[string]int{}, map[string]int{}
	}
	for k, v := range o.answers {
		c.answers[k] += v
	}
	for k, v := range o.errors {
		c.errors[k] += v
	}
	c.requests += o.requests
}

// count counts one request: an answer from cluster, or an error of reason.
func (c *demoCounts) count(cluster, reason string) {
	if c.answers == nil {
		c.answers, c.errors = map[string]int{}, map[string]int{}
	}
	c.requests++
	if reason != "" {
		c.errors[reason]++
	} else {
		c.answers[cluster]++
	}
}

// failed returns the number of errors.
func (c *demoCounts) failed() int {
	n := 0
	for _, v := range c.errors {
		n += v
	}
	return n
}

// record counts a request to host finished at t: an answer from cluster, or an error.
func (s *demoStats) record(t time.Time, host, cluster, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[host]
	if h == nil {
		h = &demoHostStats{}
		s.hosts[host] = h
	}
	sec := t.Unix()
	slot := &h.ring[sec%int64(len(h.ring))]
	if slot.sec != sec {
		*slot = demoCounts{sec: sec}
	}
	slot.count(cluster, reason)
	h.total.count(cluster, reason)
}

// window returns host's counts over the demoWindow whole seconds before now's second, and
// since the start.
func (s *demoStats) window(now time.Time, host string) (window, total demoCounts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[host]
	if h == nil {
		return window, total
	}
	cur := now.Unix()
	for i := range h.ring {
		if slot := &h.ring[i]; slot.sec < cur && slot.sec >= cur-demoWindow {
			window.add(slot)
		}
	}
	total.add(&h.total)
	return window, total
}

// display shows the traffic every second until ctx ends: a redrawn table on a terminal,
// a line per second otherwise, nothing with --quiet.
func (d *demo) display(ctx context.Context) {
	if d.opts.quiet {
		return
	}
	if d.live {
		d.write("\x1b[?1049h") // the terminal's alternate screen, left at exit
		defer d.write("\x1b[?1049l")
		d.write(d.screen(time.Now()))
	}
	// Draw just after each whole second, which completes the window's latest second.
	untilNext := func() time.Duration {
		now := time.Now()
		return now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now)
	}
	timer := time.NewTimer(untilNext())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-timer.C:
			if d.live {
				d.write(d.screen(now))
			} else {
				d.write(d.line(now) + "\n")
			}
			timer.Reset(untilNext())
		}
	}
}

// demoPercent formats n of total as a percentage.
func demoPercent(n, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(total))
}

// line is the traffic of the last seconds on one line, for output that is not a terminal.
func (d *demo) line(now time.Time) string {
	var parts []string
	for _, host := range []string{demoCanaryHost, demoFailoverHost} {
		w, _ := d.stats.window(now, host)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %d req:", host, w.requests)
		for _, c := range d.clusters {
			fmt.Fprintf(&b, " %s %d (%s)", c.name, w.answers[c.name], demoPercent(w.answers[c.name], w.requests))
		}
		fmt.Fprintf(&b, " errors %d (%s)", w.failed(), demoPercent(w.failed(), w.requests))
		parts = append(parts, b.String())
	}
	return now.Format("15:04:05") + " last " + strconv.Itoa(demoWindow) + "s: " + strings.Join(parts, " | ")
}

// ANSI sequences of the live table.
const (
	ansiHome      = "\x1b[H"
	ansiClearLine = "\x1b[K"
	ansiClearDown = "\x1b[J"
	ansiBold      = "\x1b[1m"
	ansiRed       = "\x1b[31m"
	ansiGreen     = "\x1b[32m"
	ansiReset     = "\x1b[0m"
)

// screen renders the live table, redrawn in place every second.
func (d *demo) screen(now time.Time) string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	up := now.Sub(d.start).Truncate(time.Second)
	add("%sStrait demo%s: 3 simulated clusters, one network, one process. Up %s.", ansiBold, ansiReset, up)
	add("")
	add("%-8s %-9s %-16s %s", "CLUSTER", "REGION", "GATEWAY", "PODINFO PODS")
	for _, c := range d.clusters {
		add("%-8s %-9s %-16s %s", c.name, c.region, c.gateway(), c.status(now))
	}
	add("")
	add("%sRequests to the %s Gateway, %d/s per hostname, last %ds:%s", ansiBold, d.clusters[0].name, d.opts.rate, demoWindow, ansiReset)
	header := fmt.Sprintf("%-22s %4s", "HOSTNAME", "REQS")
	for _, c := range d.clusters {
		header += fmt.Sprintf("  %-9s", strings.ToUpper(c.name))
	}
	add("%s  %s", header, "ERRORS")
	for _, host := range []string{demoCanaryHost, demoFailoverHost} {
		w, _ := d.stats.window(now, host)
		row := fmt.Sprintf("%-22s %4d", host, w.requests)
		for _, c := range d.clusters {
			row += fmt.Sprintf("  %4d %4s", w.answers[c.name], demoPercent(w.answers[c.name], w.requests))
		}
		errs := fmt.Sprintf("%4d %4s", w.failed(), demoPercent(w.failed(), w.requests))
		if n := w.failed(); n > 0 {
			// The most frequent reason only, to fit 80 columns; the summary lists them all.
			top := strings.TrimPrefix(demoReasons(w.errors)[0], "HTTP ")
			errs = ansiRed + errs + " " + top + ansiReset
		}
		add("%s  %s", row, errs)
	}
	add("")
	add("%sTry it:%s", ansiBold, ansiReset)
	us := d.clusters[0]
	add("  curl -H 'Host: %s' http://%s/", demoCanaryHost, us.gateway())
	add("  curl -H 'Host: %s' http://%s/", demoFailoverHost, us.gateway())
	add("Admin: http://%s/debug/config", d.admin)
	add("")
	d.outMu.Lock()
	events, keys := slices.Clone(d.events), d.keys
	d.outMu.Unlock()
	// The screen fits 80x24: 17 lines above, up to 3 events and a blank, the keys and the
	// prompt.
	for _, e := range events {
		if r := []rune(e); len(r) > 80 {
			e = string(r[:79]) + "…"
		}
		add("%s", e)
	}
	if len(events) > 0 {
		add("")
	}
	var b strings.Builder
	b.WriteString(ansiHome)
	for _, l := range lines {
		b.WriteString(l + ansiClearLine + "\n")
	}
	if keys {
		b.WriteString("Keys: " + demoKeysHelp() + ansiClearLine + "\n> ")
	} else {
		b.WriteString("Ctrl-C quits." + ansiClearLine + "\n")
	}
	b.WriteString(ansiClearDown)
	return b.String()
}

// demoReasons lists error reasons with their counts, most frequent first.
func demoReasons(errs map[string]int) []string {
	reasons := make([]string, 0, len(errs))
	for r := range errs {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if errs[a] != errs[b] {
			return errs[b] - errs[a]
		}
		return strings.Compare(a, b)
	})
	for i, r := range reasons {
		reasons[i] = fmt.Sprintf("%s×%d", r, errs[r])
	}
	return reasons
}

// status describes the cluster's pods for the live table.
func (c *demoCluster) status(now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.pods)
	if !c.down {
		status := fmt.Sprintf("%s%d/%d up%s", ansiGreen, n, n, ansiReset)
		if ago := now.Sub(c.since); !c.since.IsZero() && ago < time.Minute {
			status += fmt.Sprintf(", restored %s ago", demoAgo(ago))
		}
		return status
	}
	ready := "still ready"
	if c.notReady {
		ready = "not ready"
	}
	return fmt.Sprintf("%s0/%d up%s, killed %s ago, %s", ansiRed, n, ansiReset, demoAgo(now.Sub(c.since)), ready)
}

// demoAgo formats a duration to the second, or to the minute beyond an hour: 42s, 3m5s,
// 1h2m.
func demoAgo(d time.Duration) string {
	if d >= time.Hour {
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	}
	return d.Truncate(time.Second).String()
}

// curlLines are the commands to try, with the real ports, each with a comment saying what
// answers.
func (d *demo) curlLines() []string {
	var cmds, notes []string
	add := func(host string, c *demoCluster, note string) {
		cmds = append(cmds, fmt.Sprintf("curl -H 'Host: %s' http://%s/", host, c.gateway()))
		notes = append(notes, note)
	}
	for _, c := range d.clusters {
		if c.canary != "" {
			add(demoCanaryHost, c, fmt.Sprintf("90%% %s, 10%% %s", c.name, c.canary))
		} else {
			add(demoCanaryHost, c, c.name+"'s own podinfo")
		}
		if c.failover {
			add(demoFailoverHost, c, c.name+" first, then the other clusters")
		}
	}
	width := 0
	for _, cmd := range cmds {
		width = max(width, len(cmd))
	}
	for i := range cmds {
		cmds[i] = fmt.Sprintf("%-*s   # %s", width, cmds[i], notes[i])
	}
	return cmds
}

// printIntro prints the clusters, the commands to try and the admin URLs.
func (d *demo) printIntro() {
	var b strings.Builder
	fmt.Fprintf(&b, "Strait demo: three simulated clusters on one network, served by one process.\n\n")
	for _, c := range d.clusters {
		var pods []string
		for _, p := range c.pods {
			pods = append(pods, fmt.Sprintf("%s 127.0.0.1:%d", p.name, p.port))
		}
		fmt.Fprintf(&b, "  %-3s %-9s gateway http://%-16s pods %s\n", c.name, c.region, c.gateway(), strings.Join(pods, ", "))
	}
	fmt.Fprintf(&b, "\nTry it:\n")
	for _, l := range d.curlLines() {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	fmt.Fprintf(&b, "\nAdmin: http://%[1]s/readyz  http://%[1]s/metrics  http://%[1]s/debug/config\n", d.admin)
	fmt.Fprintf(&b, "Config: %s\nLog:    %s\n", d.config, d.logPath)
	if !d.opts.keep {
		fmt.Fprintf(&b, "(removed at exit; --keep keeps them)\n")
	}
	fmt.Fprintf(&b, "\nThe demo sends %d requests/s to each of %s and %s at the %s Gateway.\n",
		d.opts.rate, demoCanaryHost, demoFailoverHost, d.clusters[0].name)
	if d.keys {
		fmt.Fprintf(&b, "Keys: %s.\n", demoKeysHelp())
	}
	if d.opts.duration > 0 {
		fmt.Fprintf(&b, "Stops after %s; Ctrl-C stops it earlier.\n", d.opts.duration)
	} else {
		fmt.Fprintf(&b, "Ctrl-C stops it.\n")
	}
	fmt.Fprintf(&b, "Ready.\n")
	d.write(b.String())
}

// printSummary prints the requests of the whole run.
func (d *demo) printSummary() {
	var b strings.Builder
	fmt.Fprintf(&b, "\nStopped after %s. Requests to the %s Gateway:\n", time.Since(d.start).Truncate(time.Second), d.clusters[0].name)
	for _, host := range []string{demoCanaryHost, demoFailoverHost} {
		_, t := d.stats.window(time.Now(), host)
		fmt.Fprintf(&b, "  %-24s %6d:", host, t.requests)
		for _, c := range d.clusters {
			fmt.Fprintf(&b, " %s %d (%s)", c.name, t.answers[c.name], demoPercent(t.answers[c.name], t.requests))
		}
		fmt.Fprintf(&b, " errors %d (%s)", t.failed(), demoPercent(t.failed(), t.requests))
		if t.failed() > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(demoReasons(t.errors), " "))
		}
		b.WriteString("\n")
	}
	d.write(b.String())
}

// event reports a key's effect: in the live table, or on a line of its own.
func (d *demo) event(format string, args ...any) {
	msg := time.Now().Format("15:04:05") + "  " + fmt.Sprintf(format, args...)
	if d.live {
		d.outMu.Lock()
		d.events = append(d.events, msg)
		if len(d.events) > demoEvents {
			d.events = d.events[len(d.events)-demoEvents:]
		}
		d.outMu.Unlock()
		return
	}
	d.write(msg + "\n")
}

// printf writes formatted output.
func (d *demo) printf(format string, args ...any) { d.write(fmt.Sprintf(format, args...)) }

// write writes s to the output in one piece.
func (d *demo) write(s string) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	_, _ = io.WriteString(d.out, s)
}

// demoKeysAvailable reports whether keys may come from in: it is not nil nor the null
// device (as stdin is in CI).
func demoKeysAvailable(in io.Reader) bool {
	if in == nil {
		return false
	}
	f, ok := in.(*os.File)
	if !ok {
		return true
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// demoIsTerminal reports whether w is a terminal that understands ANSI sequences.
func demoIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
