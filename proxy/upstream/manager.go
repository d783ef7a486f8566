package upstream

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Manager. Every field is optional.
type Options struct {
	Logger *slog.Logger
	// Registerer receives per-cluster metrics (strait_upstream_*).
	Registerer prometheus.Registerer
	// Dialer opens connections to endpoints and health check targets; tests substitute
	// their own. The default is a net.Dialer, whose connections are *net.TCPConn.
	Dialer Dialer
}

// Manager holds the current set of clusters.
type Manager struct {
	log       *slog.Logger
	dialer    Dialer
	reg       prometheus.Registerer
	collector prometheus.Collector

	// mu serializes updates; readers use clusters.
	mu       sync.Mutex
	closed   bool
	clusters atomic.Pointer[map[string]*Cluster]
	// wanted are the clusters of the last Stage; clusters also holds removed ones until
	// they are retired.
	wanted map[string]*Cluster
	// wg tracks the goroutines of every cluster, removed ones included.
	wg sync.WaitGroup
}

// NewManager returns a Manager without clusters.
func NewManager(opts Options) *Manager {
	m := &Manager{log: opts.Logger, dialer: opts.Dialer, reg: opts.Registerer}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "upstream")
	if m.dialer == nil {
		m.dialer = &net.Dialer{}
	}
	m.clusters.Store(&map[string]*Cluster{})
	if m.reg != nil {
		m.collector = collector{m: m}
		if err := m.reg.Register(m.collector); err != nil {
			m.log.Error("cannot register upstream metrics", "error", err)
			m.collector = nil
		}
	}
	return m
}

// Update validates and installs a full set of clusters, with their endpoints and the secrets
// their TLS settings reference. An error names the cluster and what the proxy cannot honor
// (the xDS client NACKs with it) and changes nothing. Endpoints that stay (same cluster,
// same address) keep their health and outlier state; removed clusters stop their health
// checks and close their connections as requests in flight finish.
func (m *Manager) Update(clusters []*clusterv3.Cluster, assignments []*endpointv3.ClusterLoadAssignment, secrets []*tlsv3.Secret) error {
	retire, err := m.Stage(clusters, assignments, secrets)
	if err != nil {
		return err
	}
	retire()
	return nil
}

// Stage installs a new set of clusters but keeps the removed ones reachable by name until
// retire is called, so that a caller can first switch its routes to the new set: a request
// routed by the previous route table still finds its cluster (make before break). A removed
// cluster that a later Stage brings back before retire runs is kept.
func (m *Manager) Stage(clusters []*clusterv3.Cluster, assignments []*endpointv3.ClusterLoadAssignment, secrets []*tlsv3.Secret) (retire func(), err error) {
	specs, err := compile(clusters, assignments, secrets)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("upstream manager is closed")
	}
	old := *m.clusters.Load()
	wanted := make(map[string]*Cluster, len(specs))
	for _, s := range specs {
		c := old[s.name]
		if c == nil {
			c = newCluster(s.name, m.log, m.dialer, &m.wg)
		}
		c.apply(s)
		wanted[s.name] = c
	}
	staged := maps.Clone(wanted)
	var removed []*Cluster
	for name, c := range old {
		if wanted[name] == nil {
			staged[name] = c
			removed = append(removed, c)
		}
	}
	m.clusters.Store(&staged)
	m.wanted = wanted
	m.log.Debug("clusters updated", "clusters", len(wanted), "removed", len(removed))
	return func() { m.retire(removed) }, nil
}

// retire drops and closes the removed clusters that no later Stage brought back.
func (m *Manager) retire(removed []*Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.clusters.Load()
	next := maps.Clone(cur)
	for _, c := range removed {
		if next[c.name] == c && m.wanted[c.name] != c {
			delete(next, c.name)
			c.close()
		}
	}
	m.clusters.Store(&next)
}

// compile checks and compiles a full set of clusters.
func compile(clusters []*clusterv3.Cluster, assignments []*endpointv3.ClusterLoadAssignment, secrets []*tlsv3.Secret) ([]*clusterSpec, error) {
	byName := func(kind, name string, seen map[string]bool) error {
		if name == "" {
			return fmt.Errorf("%s without a name", kind)
		}
		if seen[name] {
			return fmt.Errorf("%s %q: duplicate name", kind, name)
		}
		seen[name] = true
		return nil
	}
	secretsByName := make(map[string]*tlsv3.Secret, len(secrets))
	seen := map[string]bool{}
	for _, s := range secrets {
		if err := byName("secret", s.GetName(), seen); err != nil {
			return nil, err
		}
		if err := s.ValidateAll(); err != nil {
			return nil, fmt.Errorf("secret %q: %w", s.GetName(), err)
		}
		secretsByName[s.GetName()] = s
	}
	claByName := make(map[string]*endpointv3.ClusterLoadAssignment, len(assignments))
	seen = map[string]bool{}
	for _, cla := range assignments {
		if err := byName("endpoints", cla.GetClusterName(), seen); err != nil {
			return nil, err
		}
		if err := cla.ValidateAll(); err != nil {
			return nil, fmt.Errorf("endpoints %q: %w", cla.GetClusterName(), err)
		}
		claByName[cla.GetClusterName()] = cla
	}
	specs := make([]*clusterSpec, 0, len(clusters))
	seen = map[string]bool{}
	for _, c := range clusters {
		if err := byName("cluster", c.GetName(), seen); err != nil {
			return nil, err
		}
		if err := c.ValidateAll(); err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.GetName(), err)
		}
		service := cmp.Or(c.GetEdsClusterConfig().GetServiceName(), c.GetName())
		s, err := compileCluster(c, claByName[service], secretsByName)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.GetName(), err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// Cluster returns the named cluster, nil if unknown.
func (m *Manager) Cluster(name string) *Cluster {
	return (*m.clusters.Load())[name]
}

// Warming returns how many endpoints of the current clusters wait for their first active
// health check verdict: a proxy is not ready to take traffic before they all have one, as
// Envoy's clusters warm up with their first health check round. It is 0 once the Manager is
// closed, as no verdict will come then.
func (m *Manager) Warming() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0
	}
	n := 0
	for _, c := range m.wanted {
		n += c.warming()
	}
	return n
}

// Stats returns every cluster's statistics, sorted by name.
func (m *Manager) Stats() []ClusterStats {
	clusters := *m.clusters.Load()
	stats := make([]ClusterStats, 0, len(clusters))
	for _, c := range clusters {
		stats = append(stats, c.Stats())
	}
	slices.SortFunc(stats, func(a, b ClusterStats) int { return cmp.Compare(a.Name, b.Name) })
	return stats
}

// Close closes every cluster and waits for their goroutines.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, c := range *m.clusters.Load() {
		c.close()
	}
	m.clusters.Store(&map[string]*Cluster{})
	m.mu.Unlock()
	m.wg.Wait()
	if m.collector != nil {
		m.reg.Unregister(m.collector)
	}
}
