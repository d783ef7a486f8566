package kubernetes

import (
	"fmt"
	"slices"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/translator"
)

// Clients are the API clients of one member cluster.
type Clients struct {
	// Kube reads and writes the core and discovery kinds (and Leases).
	Kube kubernetes.Interface
	// Gateway reads and writes Gateway API kinds.
	Gateway gwclient.Interface
	// MCS reads and writes ServiceExports and ServiceImports.
	MCS mcsclient.Interface
	// Dynamic reads and writes Strait's own kinds (BackendTrafficPolicies), which have no
	// generated typed client.
	Dynamic dynamic.Interface
}

// NewClients returns the clients of the cluster cfg points to.
func NewClients(cfg *rest.Config) (*Clients, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	gw, err := gwclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway-api client: %w", err)
	}
	mcs, err := mcsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("mcs-api client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &Clients{Kube: kube, Gateway: gw, MCS: mcs, Dynamic: dyn}, nil
}

// Member is a member cluster as the status and mirror writers see it: its description and
// the clients to write to it.
type Member struct {
	// Cluster describes the cluster (name, region, zone, network, labels).
	Cluster translator.Cluster
	// Clients reach the cluster's API server.
	Clients *Clients
}

// Registry holds the member clusters the provider currently watches, keyed by cluster name.
// It is safe for concurrent use. A cluster's entry is replaced when its credentials change,
// so a writer looks its cluster up for each batch of writes rather than keeping a Member.
type Registry struct {
	mu      sync.RWMutex
	members map[string]*Member
}

// Get returns the member cluster called name.
func (r *Registry) Get(name string) (*Member, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.members[name]
	return m, ok
}

// Names returns the names of the member clusters, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.members))
	for name := range r.members {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (r *Registry) set(m *Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members == nil {
		r.members = map[string]*Member{}
	}
	r.members[m.Cluster.Name] = m
}

func (r *Registry) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, name)
}
