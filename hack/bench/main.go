//go:build linux

// Command bench compares the Strait edge proxy with HAProxy, nginx, Go's httputil.ReverseProxy
// and a direct connection, in one run on loopback, and prints a markdown table (also written to
// hack/bench/results/<date>.md).
//
//	go run ./hack/bench            # full run: rps figures are medians of 3 runs (about 8-10 min)
//	go run ./hack/bench --quick    # one short run of everything (about 2-3 min)
//
// Topology: each proxy under test is a fresh process pinned to core 0 (taskset -c 0) with one
// thread of work (HAProxy nbthread 1, nginx worker_processes 1, Go proxies GOMAXPROCS=1); the
// load generators (wrk, h2load, openloop) and the backend (nginx answering `return 200` with a
// small body) share core 1. See README.md for what each measurement means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick       bool
	runs        int
	duration    time.Duration
	warmup      time.Duration
	conns       []int
	h2Conns     int
	h2Streams   int
	latDuration time.Duration
	latWarmup   time.Duration
	latConns    int
	rate        float64
	idleConns   int
	targets     []string
	straitBin   string
	install     bool
	outDir      string
	write       bool
	keep        bool
}

// Target names, in table order.
const (
	tDirect  = "direct"
	tHAProxy = "haproxy"
	tNginx   = "nginx"
	tGoProxy = "go-reverseproxy"
	tStrait  = "strait"
)

var allTargets = []string{tDirect, tHAProxy, tNginx, tGoProxy, tStrait}

// straitNoRun is what Strait's cells say while `strait run` does not exist.
const straitNoRun = "not available (no run command yet)"

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "short run: 1 run of 3s per figure, 4s latency test")
	fs.IntVar(&o.runs, "runs", 3, "runs per figure (the table shows the median)")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "duration of each requests/s run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each requests/s run (not counted)")
	connList := fs.String("conns", "1,16,256", "HTTP/1.1 keep-alive connection counts")
	fs.IntVar(&o.h2Conns, "h2-conns", 16, "h2 connections")
	fs.IntVar(&o.h2Streams, "h2-streams", 10, "concurrent streams per h2 connection")
	fs.DurationVar(&o.latDuration, "lat-duration", 8*time.Second, "measured duration of each fixed-rate latency run")
	fs.DurationVar(&o.latWarmup, "lat-warmup", time.Second, "warm-up of each latency run, at the same rate")
	fs.IntVar(&o.latConns, "lat-conns", 64, "keep-alive connections of the latency test's pool")
	fs.Float64Var(&o.rate, "rate", 0, "request rate of the latency test (default: half of HAProxy's best requests/s)")
	fs.IntVar(&o.idleConns, "idle-conns", 2000, "idle connections of the memory test")
	targetList := fs.String("targets", strings.Join(allTargets, ","), "columns to run, of "+strings.Join(allTargets, ","))
	fs.StringVar(&o.straitBin, "strait", "", "prebuilt strait binary (default: go build ./cmd/strait)")
	noInstall := fs.Bool("no-install", false, "do not apt-get install missing tools")
	fs.StringVar(&o.outDir, "out", "hack/bench/results", "directory for the results file (relative to the module root)")
	noWrite := fs.Bool("no-write", false, "print the table only; write no results file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.install, o.write = !*noInstall, !*noWrite
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("runs", func() { o.runs = 1 })
		def("duration", func() { o.duration = 3 * time.Second })
		def("lat-duration", func() { o.latDuration = 4 * time.Second })
	}
	for f := range strings.SplitSeq(*connList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--conns: bad connection count %q", f)
		}
		o.conns = append(o.conns, n)
	}
	for f := range strings.SplitSeq(*targetList, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allTargets, f) {
			return o, fmt.Errorf("--targets: unknown target %q (known: %s)", f, strings.Join(allTargets, ","))
		}
		if !slices.Contains(o.targets, f) {
			o.targets = append(o.targets, f)
		}
	}
	// Table order, whatever the order given.
	slices.SortFunc(o.targets, func(a, b string) int {
		return slices.Index(allTargets, a) - slices.Index(allTargets, b)
	})
	switch {
	case o.runs < 1:
		return o, errors.New("--runs must be at least 1")
	case o.duration < time.Second || o.latDuration < time.Second:
		return o, errors.New("--duration and --lat-duration must be at least 1s")
	case o.h2Conns < 1 || o.h2Streams < 1 || o.latConns < 1 || o.idleConns < 1:
		return o, errors.New("connection and stream counts must be positive")
	}
	return o, nil
}

// target is one column: something that proxies to the backend (or the backend itself, direct).
type target struct {
	name        string
	unavailable string // why the column has no figures, when it has none
	h1, h2      int    // HTTP/1.1 and h2c ports
	// start launches a fresh process; nil for direct, which is the backend itself.
	start        func() (*proc, error)
	readyTimeout time.Duration
}

type bench struct {
	opts    options
	sup     *supervisor
	dir     string // temporary: configs, logs, binaries
	root    string // module root
	started time.Time
	backend struct{ h1, h2 int }
	targets []*target

	// results[target][row] holds one sample per run.
	results map[string]map[string][]sample
	// latency[target] holds each latency run's full result (errors, lag, saturation).
	latency map[string][]*latencyResult
	rate    float64
	rateHow string
	notes   []string
	// versions of the programs compared, for the report.
	versions []string
	// warning, when set, heads the table: the machine was not quiet.
	warning string
}

func main() {
	os.Exit(mainCode())
}

func mainCode() int {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "strait-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	reapStale(dir)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &bench{
		opts:    opts,
		sup:     newSupervisor(dir),
		dir:     dir,
		started: time.Now(),
		results: map[string]map[string][]sample{},
		latency: map[string][]*latencyResult{},
	}

	// Every process the bench starts goes when it ends, Ctrl-C and kill included: the first
	// signal stops everything and makes the run return; a second one exits at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping every process it started\n", s)
		cancel()
		b.sup.stopAll()
		select {
		case <-sigs:
		case <-time.After(10 * time.Second):
		}
		b.cleanup(false)
		os.Exit(130)
	}()

	err = b.run(ctx)
	b.sup.stopAll()
	if ctx.Err() != nil {
		b.cleanup(false)
		fmt.Fprintln(os.Stderr, "bench: interrupted; no results")
		return 130
	}
	b.cleanup(err != nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func (b *bench) cleanup(failed bool) {
	if b.opts.keep || failed {
		// Kept on purpose: no owner file, so that a later run's reapStale leaves it alone.
		_ = os.Remove(filepath.Join(b.dir, ownerFile))
		fmt.Fprintf(os.Stderr, "bench: configs and logs kept in %s\n", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (b *bench) bin(name string) string { return filepath.Join(b.dir, "bin", name) }

func (b *bench) run(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		return errors.New("the bench needs Linux (taskset, /proc)")
	}
	if n := runtime.NumCPU(); n < 2 {
		return fmt.Errorf("the bench needs 2 cores (one for the proxy, one for the load), this machine has %d", n)
	}
	if err := ensureTools(b.opts.install); err != nil {
		return err
	}
	if out, err := exec.Command("taskset", "-c", "0,1", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("taskset cannot pin to cores 0 and 1: %w %s", err, out)
	}
	if err := checkNoFile(b.opts.idleConns + 500); err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.root = root
	if err := b.build(); err != nil {
		return err
	}
	b.collectVersions()
	if load := idleCheck(2 * time.Second); load > 0.1 {
		b.note("the machine was busy before the bench started: other processes used %.2f cores "+
			"(a build or test suite on the same cores distorts every figure)", load)
	}
	mon := newCPUMonitor(b.sup)
	mon.start()
	if err := b.startBackend(ctx); err != nil {
		return err
	}
	if err := b.setupTargets(); err != nil {
		return err
	}
	b.printPlan()

	for _, phase := range []func(context.Context){b.throughput, b.chooseRate, b.latencyPhase, b.memoryPhase} {
		if err := ctx.Err(); err != nil {
			return err
		}
		phase(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if note, warn := cpuNote(mon.finish()); note != "" {
		if warn {
			b.warning = "WARNING: " + note + ". The figures below are distorted; rerun on a quiet machine."
			logf("%s", b.warning)
		}
		b.notes = append(b.notes, note)
	}

	report := b.render()
	fmt.Println()
	fmt.Print(report.table)
	if b.opts.write {
		path, err := b.writeReport(report)
		if err != nil {
			return err
		}
		fmt.Printf("\nwritten to %s\n", path)
	}
	return nil
}

// moduleRoot finds the Strait module the bench belongs to, from the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	data, err := os.ReadFile(gomod)
	if gomod == "" || gomod == os.DevNull || err != nil ||
		!strings.Contains(string(data), "module github.com/strait-gw/strait\n") {
		return "", errors.New("run the bench from the Strait module (go run ./hack/bench)")
	}
	return filepath.Dir(gomod), nil
}

// build compiles the bench's helpers and, unless --strait names one, the strait binary.
func (b *bench) build() error {
	if err := os.MkdirAll(filepath.Join(b.dir, "bin"), 0o755); err != nil {
		return err
	}
	goBuild := func(out, pkg string) error {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = b.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			// The first line is the package ("# github.com/..."), the second the first error.
			lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
			if len(lines) > 2 {
				lines = lines[:2]
			}
			return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.Join(lines, ": "))
		}
		return nil
	}
	logf("building hack/bench/openloop and hack/bench/goproxy")
	for _, name := range []string{"openloop", "goproxy"} {
		if err := goBuild(b.bin(name), "./hack/bench/"+name); err != nil {
			return err
		}
	}
	if !slices.Contains(b.opts.targets, tStrait) || b.opts.straitBin != "" {
		return nil
	}
	logf("building ./cmd/strait")
	if err := goBuild(b.bin("strait"), "./cmd/strait"); err != nil {
		// Another engineer's work in progress must not stop the other columns.
		b.note("strait: %s", firstLine(err.Error()))
	}
	return nil
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, msg)
	logf("%s", msg)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func (b *bench) collectVersions() {
	v := func(name string, argv ...string) {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if line := firstLine(string(out)); line != "" {
			b.versions = append(b.versions, fmt.Sprintf("%s: %s", name, line))
		}
	}
	v("HAProxy", "haproxy", "-v")
	v("nginx", "nginx", "-v")
	v("wrk", "wrk", "-v")
	v("h2load", "h2load", "--version")
	v("Go", "go", "version")
	if out, err := exec.Command("git", "-C", b.root, "describe", "--always", "--dirty").Output(); err == nil {
		b.versions = append(b.versions, "strait tree: "+strings.TrimSpace(string(out)))
	}
	b.versions = append(b.versions, "kernel: "+uname())
	if cpu := cpuModel(); cpu != "" {
		b.versions = append(b.versions, fmt.Sprintf("CPU: %d x %s", runtime.NumCPU(), cpu))
	}
}

func uname() string {
	out, err := exec.Command("uname", "-srm").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	// Hold them all open while choosing, so that the n ports differ.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// startBackend starts the backend nginx on the load core; it serves every column.
func (b *bench) startBackend(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	b.backend.h1, b.backend.h2 = ports[0], ports[1]
	dir := filepath.Join(b.dir, "backend")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(backendNginxConf(dir, b.backend.h1, b.backend.h2)), 0o644); err != nil {
		return err
	}
	p, err := b.sup.start("backend", loadCPU, nil, "nginx", "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, b.backend.h1, 10*time.Second); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	logf("backend nginx on 127.0.0.1:%d (HTTP/1.1) and :%d (h2c), core %s", b.backend.h1, b.backend.h2, loadCPU)
	return nil
}

// waitReady polls http://127.0.0.1:port/ until it answers 200 with the backend's body.
func waitReady(ctx context.Context, p *proc, port int, timeout time.Duration) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	defer client.CloseIdleConnections()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != nil && p.exited() {
			logf("%s exited; the end of %s:\n%s", p.name, p.log, p.logTail(15))
			return fmt.Errorf("exited (%w): %s", p.err, lastLine(p.logTail(1)))
		}
		resp, err := client.Get(url)
		if err == nil {
			body := make([]byte, 256)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body[:n]) == backendBody {
				return nil
			}
			last = fmt.Sprintf("status %d, body %q", resp.StatusCode, body[:n])
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p != nil {
		logf("%s not ready; the end of %s:\n%s", p.name, p.log, p.logTail(15))
	}
	return fmt.Errorf("not ready on port %d after %v (last: %s)", port, timeout, last)
}

// setupTargets writes each proxy's configuration and decides which columns can run.
func (b *bench) setupTargets() error {
	backendURL := fmt.Sprintf("http://127.0.0.1:%d", b.backend.h1)
	for _, name := range b.opts.targets {
		t := &target{name: name, readyTimeout: 10 * time.Second}
		b.targets = append(b.targets, t)
		ports, err := freePorts(4)
		if err != nil {
			return err
		}
		t.h1, t.h2 = ports[0], ports[1]
		dir := filepath.Join(b.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		switch name {
		case tDirect:
			t.h1, t.h2 = b.backend.h1, b.backend.h2
		case tHAProxy:
			conf := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(conf, []byte(haproxyConf(t.h1, t.h2, b.backend.h1, max(4096, b.opts.idleConns+1000))), 0o644); err != nil {
				return err
			}
			if out, err := exec.Command("haproxy", "-c", "-q", "-f", conf).CombinedOutput(); err != nil {
				t.unavailable = fmt.Sprintf("config check failed: %s", firstLine(string(out)))
			}
			t.start = func() (*proc, error) {
				return b.sup.start(name, proxyCPU, nil, "haproxy", "-db", "-f", conf)
			}
		case tNginx:
			conf := filepath.Join(dir, "nginx.conf")
			errLog := filepath.Join(dir, "error.log")
			if err := os.WriteFile(conf, []byte(proxyNginxConf(dir, t.h1, t.h2, b.backend.h1)), 0o644); err != nil {
				return err
			}
			if out, err := exec.Command("nginx", "-t", "-q", "-c", conf, "-e", errLog).CombinedOutput(); err != nil {
				t.unavailable = fmt.Sprintf("config check failed: %s", firstLine(string(out)))
			}
			t.start = func() (*proc, error) {
				return b.sup.start(name, proxyCPU, nil, "nginx", "-c", conf, "-e", errLog)
			}
		case tGoProxy:
			t.h2 = t.h1 // h2c with prior knowledge on the same port
			t.start = func() (*proc, error) {
				return b.sup.start(name, proxyCPU, []string{"GOMAXPROCS=1"}, b.bin("goproxy"),
					"-listen", fmt.Sprintf("127.0.0.1:%d", t.h1), "-backend", backendURL)
			}
		case tStrait:
			t.h2 = t.h1 // the Gateway's HTTP listener; h2c if Strait speaks it there
			t.readyTimeout = 60 * time.Second
			bin := b.opts.straitBin
			if bin == "" {
				bin = b.bin("strait")
			}
			conf, err := writeStraitConfig(dir, t.h1, b.backend.h1, ports[2], ports[3])
			if err != nil {
				return err
			}
			t.unavailable = straitAvailable(bin)
			t.start = func() (*proc, error) {
				return b.sup.start(name, proxyCPU, []string{"GOMAXPROCS=1"}, bin, "run", "--config", conf)
			}
		}
		if t.unavailable != "" {
			logf("%s: %s", name, t.unavailable)
		}
	}
	return nil
}

// straitAvailable returns "" when bin has a `run` subcommand, or why the column is empty.
func straitAvailable(bin string) string {
	if _, err := os.Stat(bin); err != nil {
		return "not available (go build ./cmd/strait failed)"
	}
	out, err := exec.Command(bin, "run", "--help").CombinedOutput()
	if err != nil || strings.Contains(string(out), "unknown command") {
		return straitNoRun
	}
	return ""
}

// up starts a fresh process for t and waits until it proxies to the backend. For direct it
// returns nil: the backend is already up.
func (b *bench) up(ctx context.Context, t *target) (*proc, error) {
	if t.start == nil {
		return nil, nil
	}
	p, err := t.start()
	if err != nil {
		return nil, err
	}
	if err := waitReady(ctx, p, t.h1, t.readyTimeout); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (b *bench) record(target, row string, s sample) {
	if b.results[target] == nil {
		b.results[target] = map[string][]sample{}
	}
	b.results[target][row] = append(b.results[target][row], s)
}

func (b *bench) active() []*target {
	var ts []*target
	for _, t := range b.targets {
		if t.unavailable == "" {
			ts = append(ts, t)
		}
	}
	return ts
}

func (b *bench) printPlan() {
	active := b.active()
	procs := 0
	for _, t := range active {
		if t.start != nil {
			procs++
		}
	}
	per := b.opts.warmup + b.opts.duration
	est := time.Duration(b.opts.runs*len(active)*(len(b.opts.conns)+1))*per +
		time.Duration(b.opts.runs*procs)*time.Second +
		time.Duration(b.opts.runs*len(active))*(b.opts.latWarmup+b.opts.latDuration+time.Second) +
		time.Duration(b.opts.runs*procs)*latDrain/2 + // proxies that cannot keep up drain their queue
		time.Duration(procs)*5*time.Second
	names := make([]string, 0, len(active))
	for _, t := range active {
		names = append(names, t.name)
	}
	logf("columns: %s", strings.Join(names, ", "))
	logf("%s; estimated run time %v", b.method(), est.Round(10*time.Second))
}

// method says how the requests/s figures were taken.
func (b *bench) method() string {
	if b.opts.runs == 1 {
		return fmt.Sprintf("requests/s and latency figures: a single run each (requests/s: %v after a %v warm-up)",
			b.opts.duration, b.opts.warmup)
	}
	return fmt.Sprintf("requests/s and latency figures: median of %d runs, rounds interleaved across columns "+
		"(requests/s: %v each after a %v warm-up)", b.opts.runs, b.opts.duration, b.opts.warmup)
}

func rowH1(conns int) string { return "h1/" + strconv.Itoa(conns) }

const (
	rowH2      = "h2"
	rowP50     = "lat/p50"
	rowP99     = "lat/p99"
	rowP999    = "lat/p99.9"
	rowAchieve = "lat/achieved"
	rowMem     = "mem"
)

// throughput is step 1 and 3: requests/s with wrk (HTTP/1.1) and h2load (h2c). Each round
// starts every column on a fresh process (all on the proxy core; the ones waiting their turn
// are idle), and the columns take turns at each measurement, in an order that rotates from
// round to round: the figures a ratio compares are taken seconds apart, not a minute, which
// matters on a machine whose speed drifts (the ratios are per round, see pairedRatio).
func (b *bench) throughput(ctx context.Context) {
	active := b.active()
	for r := range b.opts.runs {
		order := make([]*target, len(active))
		for i := range active {
			order[i] = active[(i+r)%len(active)]
		}
		procs := map[string]*proc{}
		down := map[string]string{} // why a column did not start
		for _, t := range order {
			p, err := b.up(ctx, t)
			if err != nil {
				down[t.name] = "start: " + firstLine(err.Error())
				logf("[run %d/%d] %s: %v", r+1, b.opts.runs, t.name, err)
				continue
			}
			procs[t.name] = p
		}
		measure := func(row, what string, run func(t *target, p *proc) (sample, sample)) {
			for _, t := range order {
				if ctx.Err() != nil {
					return
				}
				s, cpu := sample{err: down[t.name]}, sample{err: down[t.name]}
				if down[t.name] == "" {
					s, cpu = run(t, procs[t.name])
				}
				b.record(t.name, row, s)
				if t.start != nil {
					b.record(t.name, rowCPU(row), cpu)
				}
				logf("[run %d/%d] %s %s: %s%s", r+1, b.opts.runs, t.name, what, s.describe("req/s"), cpu.describeCPU())
			}
		}
		for _, c := range b.opts.conns {
			measure(rowH1(c), fmt.Sprintf("HTTP/1.1 %d conns", c), func(t *target, p *proc) (sample, sample) {
				return b.wrk(ctx, t.h1, c, p)
			})
		}
		measure(rowH2, fmt.Sprintf("h2c %dx%d", b.opts.h2Conns, b.opts.h2Streams), func(t *target, p *proc) (sample, sample) {
			return b.h2load(ctx, t.h2, p)
		})
		for _, p := range procs {
			if p != nil {
				p.stop()
			}
		}
	}
}

// rowCPU is the row of the CPU time per request of a requests/s row.
func rowCPU(row string) string { return "cpu/" + row }

func (s sample) describeCPU() string {
	if s.err != "" || s.value <= 0 {
		return ""
	}
	return fmt.Sprintf(", %.1f µs of CPU per request", s.value)
}

func (s sample) describe(unit string) string {
	if s.err != "" {
		return "error: " + s.err
	}
	out := fmt.Sprintf("%s %s", thousands(s.value), unit)
	if s.warn != "" {
		out += " (" + s.warn + ")"
	}
	return out
}

// chooseRate sets the latency test's rate: --rate, else half of HAProxy's best median
// requests/s over the HTTP/1.1 connection counts.
func (b *bench) chooseRate(context.Context) {
	if b.opts.rate > 0 {
		b.rate, b.rateHow = b.opts.rate, "set with --rate"
		return
	}
	best, at := 0.0, 0
	for _, c := range b.opts.conns {
		if m, ok := median(b.results[tHAProxy][rowH1(c)]); ok && m > best {
			best, at = m, c
		}
	}
	if best > 0 {
		b.rate = best / 2
		b.rateHow = fmt.Sprintf("half of HAProxy's best HTTP/1.1 figure (%s req/s at %d connections)", thousands(best), at)
		return
	}
	// No HAProxy figure: half of the best figure of any proxy, and say so.
	for _, t := range b.active() {
		if t.name == tDirect {
			continue
		}
		for _, c := range b.opts.conns {
			if m, ok := median(b.results[t.name][rowH1(c)]); ok && m > best {
				best = m
				b.rateHow = fmt.Sprintf("no HAProxy figure: half of %s's best HTTP/1.1 figure (%s req/s at %d connections)",
					t.name, thousands(m), c)
			}
		}
	}
	b.rate = best / 2
}

// latencyPhase is step 2: latency at a fixed rate, open loop, each run on a fresh process,
// rounds interleaved like the requests/s runs.
func (b *bench) latencyPhase(ctx context.Context) {
	if b.rate <= 0 {
		b.note("latency test skipped: no requests/s figure to derive the rate from (pass --rate)")
		return
	}
	logf("latency test at %s req/s (%s), %d connections, %v after a %v warm-up",
		thousands(b.rate), b.rateHow, b.opts.latConns, b.opts.latDuration, b.opts.latWarmup)
	active := b.active()
	for r := range b.opts.runs {
		for i := range active {
			if ctx.Err() != nil {
				return
			}
			t := active[(i+r)%len(active)]
			tag := fmt.Sprintf("[latency %d/%d] %s", r+1, b.opts.runs, t.name)
			res := b.latencyRun(ctx, t)
			b.latency[t.name] = append(b.latency[t.name], res)
			if res.Completed == 0 {
				logf("%s: error: %s", tag, res.FirstError)
				for _, row := range []string{rowP50, rowP99, rowP999, rowAchieve} {
					b.record(t.name, row, sample{err: res.FirstError})
				}
				continue
			}
			b.record(t.name, rowP50, sample{value: res.P50us})
			b.record(t.name, rowP99, sample{value: res.P99us})
			b.record(t.name, rowP999, sample{value: res.P999us})
			b.record(t.name, rowAchieve, sample{value: res.AchievedRPS})
			logf("%s: p50 %s p99 %s p99.9 %s ms, achieved %s req/s, %d errors, %d dropped, generator lag p99 %.0fus",
				tag, ms(res.P50us), ms(res.P99us), ms(res.P999us), thousands(res.AchievedRPS), res.Errors, res.Dropped,
				res.PacerLagP99us)
		}
	}
}

func (b *bench) latencyRun(ctx context.Context, t *target) *latencyResult {
	p, err := b.up(ctx, t)
	if err != nil {
		return &latencyResult{FirstError: "start: " + firstLine(err.Error())}
	}
	if p != nil {
		defer p.stop()
	}
	res, err := b.openloop(ctx, t.h1, b.rate)
	if err != nil {
		return &latencyResult{FirstError: err.Error()}
	}
	if res.Completed == 0 && res.FirstError == "" {
		res.FirstError = "no request completed"
	}
	return res
}

// memoryPhase is step 4: resident memory per idle keep-alive connection, on a fresh process.
func (b *bench) memoryPhase(ctx context.Context) {
	for _, t := range b.active() {
		if t.start == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		p, err := b.up(ctx, t)
		if err != nil {
			logf("[memory] %s: %v", t.name, err)
			b.record(t.name, rowMem, sample{err: "start: " + firstLine(err.Error())})
			continue
		}
		s, detail := b.idleMemory(ctx, t, p)
		b.record(t.name, rowMem, s)
		if detail != "" {
			b.notes = append(b.notes, fmt.Sprintf("memory, %s: %s", t.name, detail))
		}
		if s.err != "" {
			logf("[memory] %s: error: %s", t.name, s.err)
		} else {
			logf("[memory] %s: %.1f KiB per idle connection (%s)", t.name, s.value, detail)
		}
		p.stop()
	}
}
