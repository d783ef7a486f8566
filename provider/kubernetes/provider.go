package kubernetes

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/strait-gw/strait/provider/internal/latest"
	"github.com/strait-gw/strait/translator"
)

// Defaults of Options.
const (
	// DefaultDebounce is how long the provider waits after the last change before it
	// publishes: a rollout changes many EndpointSlices in a burst.
	DefaultDebounce = 100 * time.Millisecond
	// DefaultProbeInterval is how often each member cluster's /readyz is probed.
	DefaultProbeInterval = 10 * time.Second
	// DefaultProbeTimeout bounds one probe.
	DefaultProbeTimeout = 5 * time.Second
	// DefaultSyncTimeout is how long the first translation waits for a cluster that does not
	// sync: after it, the clusters that synced are translated without it, and it joins when
	// it syncs.
	DefaultSyncTimeout = time.Minute
)

// ClusterSpec is a member cluster given up front (a --kubeconfig flag or a config file
// entry), rather than by a ClusterLink.
type ClusterSpec struct {
	// Cluster describes the cluster.
	Cluster translator.Cluster
	// Config reaches its API server.
	Config *rest.Config
}

// Home is the control plane's home cluster, where ClusterLinks and their kubeconfig Secrets
// live.
type Home struct {
	// Kube reads the kubeconfig Secrets.
	Kube kubernetes.Interface
	// Dynamic reads ClusterLinks and writes their status.
	Dynamic dynamic.Interface
	// Namespace holds the ClusterLinks and their Secrets.
	Namespace string
}

// Options configure a Provider.
type Options struct {
	// Clusters are the member clusters given up front.
	Clusters []ClusterSpec
	// Home, if set, adds the clusters of its ClusterLinks, as they come and go.
	Home *Home
	// BindAddress is the Input's BindAddress: where Gateway listeners bind unless the
	// Gateway names an address.
	BindAddress string
	// AddressPool is the Input's AddressPool: when valid, every Gateway gets IPs of its
	// own from it.
	AddressPool netip.Prefix
	// Debounce is the quiet period after a change before publishing. Default:
	// DefaultDebounce.
	Debounce time.Duration
	// ProbeInterval and ProbeTimeout pace the health probe. Defaults: DefaultProbeInterval,
	// DefaultProbeTimeout.
	ProbeInterval, ProbeTimeout time.Duration
	// SyncTimeout bounds how long the first translation waits for a cluster's first sync.
	// Default: DefaultSyncTimeout.
	SyncTimeout time.Duration
	// NewClients makes a cluster's clients. Default: NewClients.
	NewClients func(*rest.Config) (*Clients, error)
	// Probe checks that a cluster's API server answers. Default: GET /readyz.
	Probe func(context.Context, *Clients) error
	// IsLeader says whether this replica writes ClusterLink statuses. Default: always.
	IsLeader func() bool
	// Logger receives the provider's logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer registers the provider's metrics (nil for none).
	Registerer prometheus.Registerer
}

// Provider watches the member clusters' API servers and publishes a translator.Input each
// time their resources change. It is a runner: Start it once.
type Provider struct {
	opts     Options
	log      *slog.Logger
	inputs   latest.Value[*translator.Input]
	registry Registry
	stale    *prometheus.GaugeVec

	// Signals, each of capacity one: a pending signal absorbs later ones.
	changed, linksChanged, statusChanged chan struct{}

	// Owned by Start's goroutine.
	members map[string]*member
	static  map[string]bool
	links   *linkWatcher
	// waiting is true while a publish waits for clusters to sync.
	waiting bool
	// skipped are the clusters the last publish left out for not syncing in time.
	skipped []string
}

// New returns a Provider.
func New(opts Options) *Provider {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = DefaultProbeTimeout
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.NewClients == nil {
		opts.NewClients = NewClients
	}
	if opts.Probe == nil {
		opts.Probe = readyz
	}
	if opts.IsLeader == nil {
		opts.IsLeader = func() bool { return true }
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Provider{
		opts: opts,
		log:  log.With("runner", "kubernetes-provider"),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_cluster_stale",
			Help: "1 while a member cluster's API server does not answer (its last known resources are served), 0 otherwise.",
		}, []string{"cluster"}),
		changed:       make(chan struct{}, 1),
		linksChanged:  make(chan struct{}, 1),
		statusChanged: make(chan struct{}, 1),
		members:       map[string]*member{},
		static:        map[string]bool{},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.stale)
	}
	return p
}

// Name names the runner.
func (p *Provider) Name() string { return "kubernetes-provider" }

// Subscribe returns a channel that receives the latest Input: the current one, if any, and
// each new one. The channel holds one value, and a newer Input replaces one not yet read.
// It is closed when Start returns.
func (p *Provider) Subscribe() <-chan *translator.Input { return p.inputs.Subscribe() }

// Registry returns the member clusters' clients, for the status and mirror writers.
func (p *Provider) Registry() *Registry { return &p.registry }

// notify signals a change of the clusters' resources.
func (p *Provider) notify() { p.signal(p.changed) }

func (p *Provider) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Start watches the clusters and publishes an Input after each burst of changes, once every
// cluster has synced (or SyncTimeout passed). It returns when ctx is done, after stopping
// every informer; it returns an error at once if a cluster given up front has no usable
// client.
func (p *Provider) Start(ctx context.Context) error {
	defer p.inputs.Close()
	defer p.stopAll()
	for _, spec := range p.opts.Clusters {
		clients, err := p.opts.NewClients(spec.Config)
		if err != nil {
			return fmt.Errorf("kubernetes provider: cluster %s: %w", spec.Cluster.Name, err)
		}
		p.static[spec.Cluster.Name] = true
		p.add(ctx, p.newMember(spec.Cluster, clients))
	}
	if p.opts.Home != nil {
		var err error
		if p.links, err = p.watchLinks(ctx); err != nil {
			return fmt.Errorf("kubernetes provider: %w", err)
		}
	}

	// The ticker paces the ClusterLink status writes (a new leader catches up within one
	// tick) and the publish that waits for clusters to sync.
	tick := time.NewTicker(p.opts.ProbeInterval)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.changed:
			debounce.Reset(p.opts.Debounce)
		case <-p.linksChanged:
			p.reconcileLinks(ctx)
			p.writeLinkStatuses(ctx)
		case <-p.statusChanged:
			p.writeLinkStatuses(ctx)
		case <-tick.C:
			p.writeLinkStatuses(ctx)
			if p.waiting {
				p.publish()
			}
		case <-debounce.C:
			p.promoteRebuilt()
			p.publish()
			p.writeLinkStatuses(ctx)
		}
	}
}

// add starts a member and makes it known.
func (p *Provider) add(ctx context.Context, m *member) {
	p.members[m.name] = m
	p.registry.set(&Member{Cluster: m.cluster, Clients: m.clients})
	m.start(ctx)
}

// remove stops a member and forgets it.
func (p *Provider) remove(name string) {
	m := p.members[name]
	if m.next != nil {
		m.next.stop()
	}
	m.stop()
	delete(p.members, name)
	p.registry.remove(name)
	p.stale.DeleteLabelValues(name)
	p.notify()
}

func (p *Provider) stopAll() {
	for name := range p.members {
		p.remove(name)
	}
	if p.links != nil {
		p.links.stop()
	}
}

// promoteRebuilt replaces each member rebuilt with new credentials whose rebuild has synced.
func (p *Provider) promoteRebuilt() {
	for name, m := range p.members {
		if m.next == nil || !m.next.synced() {
			continue
		}
		next := m.next
		m.stop()
		p.members[name] = next
		p.registry.set(&Member{Cluster: next.cluster, Clients: next.clients})
		p.stale.WithLabelValues(name).Set(boolGauge(next.stale.Load()))
		p.log.Info("cluster rebuilt with its new credentials", "cluster", name)
	}
}

// publish publishes the Input, unless a cluster that may still sync in time has not.
func (p *Provider) publish() {
	if p.links != nil && !p.links.synced() {
		p.waiting = true
		p.log.Info("waiting for the ClusterLinks to sync before translating")
		return
	}
	var waiting, skipped []string
	var ready []*member
	for _, m := range p.members {
		switch {
		case m.synced():
			ready = append(ready, m)
		case time.Since(m.started) < p.opts.SyncTimeout:
			waiting = append(waiting, m.name)
		default:
			skipped = append(skipped, m.name)
		}
	}
	slices.Sort(waiting)
	slices.Sort(skipped)
	p.waiting = len(waiting) > 0
	if p.waiting {
		p.log.Info("waiting for clusters to sync before translating", "clusters", waiting)
		return
	}
	if len(skipped) > 0 && !slices.Equal(skipped, p.skipped) {
		p.log.Warn("translating without clusters that have not synced; they join when they do",
			"clusters", skipped, "syncTimeout", p.opts.SyncTimeout)
	}
	p.skipped = skipped
	slices.SortFunc(ready, func(a, b *member) int { return cmp.Compare(a.name, b.name) })
	in := &translator.Input{BindAddress: p.opts.BindAddress, AddressPool: p.opts.AddressPool, Clusters: make([]*translator.ClusterResources, len(ready))}
	for i, m := range ready {
		in.Clusters[i] = m.snapshot()
	}
	p.inputs.Publish(in)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
