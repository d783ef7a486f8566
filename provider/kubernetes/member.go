package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"

	"github.com/strait-gw/strait/translator"
)

// member is one watched member cluster: its informers and its health.
type member struct {
	// name is the cluster's name, the one field of cluster other goroutines read.
	name    string
	p       *Provider
	log     *slog.Logger
	clients *Clients

	// Owned by the provider's loop goroutine.

	cluster translator.Cluster
	// link is true when the cluster comes from a ClusterLink, whose kubeconfig hashes to
	// credentials.
	link        bool
	credentials [32]byte
	// next is this cluster rebuilt with new credentials: it replaces this member once it
	// has synced, so that the cluster's resources never drop out of the Input meanwhile.
	next    *member
	started time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// watched is written by run before it closes ready, and only read after.
	watched []watchedKind
	ready   chan struct{}

	stale    atomic.Bool
	lastErr  atomic.Pointer[string]
	probeNow chan struct{}
	// refs are the Secrets and ConfigMaps the last snapshot referred to: changes to others
	// are ignored.
	refs atomic.Pointer[map[objectRef]bool]
}

// watchedKind is a kind the cluster serves, and its informer.
type watchedKind struct {
	kind     *kind
	informer cache.SharedIndexInformer
}

func (p *Provider) newMember(cluster translator.Cluster, clients *Clients) *member {
	return &member{
		name:     cluster.Name,
		p:        p,
		log:      p.log.With("cluster", cluster.Name),
		clients:  clients,
		cluster:  cluster,
		ready:    make(chan struct{}),
		probeNow: make(chan struct{}, 1),
	}
}

// start runs the member's informers and health probe until stop.
func (m *member) start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	m.started = time.Now()
	m.p.stale.WithLabelValues(m.name).Set(0)
	m.wg.Go(func() { m.run(ctx) })
	m.wg.Go(func() { m.probeLoop(ctx) })
}

// stop stops the member and waits for its goroutines, informers included.
func (m *member) stop() {
	m.cancel()
	m.wg.Wait()
}

// synced says whether every informer has synced once.
func (m *member) synced() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

// run discovers which kinds the cluster serves, starts their informers and waits for their
// first sync. A kind whose CRD is not installed (ServiceExport without the MCS CRDs, say) is
// not watched, rather than holding back the sync forever.
func (m *member) run(ctx context.Context) {
	var served []*kind
	for {
		var err error
		if served, err = servedKinds(m.clients.Kube.Discovery()); err == nil {
			break
		}
		m.log.Warn("cannot discover the cluster's API; retrying", "error", err)
		m.probeSoon()
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.p.opts.ProbeInterval):
		}
	}
	if len(served) < len(kinds) {
		var missing []string
		for i := range kinds {
			if !slices.Contains(served, &kinds[i]) {
				missing = append(missing, kinds[i].name)
			}
		}
		m.log.Info("kinds the API server does not serve are not watched", "kinds", missing)
	}

	f := newFactories(m.clients)
	watched := make([]watchedKind, 0, len(served))
	synced := make([]cache.InformerSynced, 0, len(served))
	for _, k := range served {
		inf := k.informer(f)
		if err := m.setUp(k, inf); err != nil {
			m.log.Error("cannot set up informer", "kind", k.name, "error", err)
			return
		}
		watched = append(watched, watchedKind{kind: k, informer: inf})
		synced = append(synced, inf.HasSynced)
	}
	f.start(ctx.Done())
	defer f.shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	m.watched = watched
	close(m.ready)
	m.log.Info("cluster synced")
	m.p.notify()
	<-ctx.Done()
}

// setUp trims the informer's objects and routes its events and watch errors.
func (m *member) setUp(k *kind, inf cache.SharedIndexInformer) error {
	if err := inf.SetTransform(trim); err != nil {
		return fmt.Errorf("transform: %w", err)
	}
	// A broken watch is the first sign of an API server going away: probe at once rather
	// than at the next tick. The reflector itself retries and relists.
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		cache.DefaultWatchErrorHandler(ctx, r, err)
		m.probeSoon()
	}); err != nil {
		return fmt.Errorf("watch error handler: %w", err)
	}
	changed := func(obj any) {
		if k.referenced {
			if refs := m.refs.Load(); refs == nil || !referenced(*refs, obj) {
				return
			}
		}
		m.p.notify()
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: changed,
		UpdateFunc: func(oldObj, newObj any) {
			if relevantUpdate(k, oldObj, newObj) {
				changed(newObj)
			}
		},
		DeleteFunc: changed,
	})
	if err != nil {
		return fmt.Errorf("event handler: %w", err)
	}
	return nil
}

// snapshot returns the cluster's resources from the informers' caches. The objects are the
// caches' own: the translator reads them and never writes.
func (m *member) snapshot() *translator.ClusterResources {
	res := &translator.ClusterResources{Cluster: m.cluster}
	for _, w := range m.watched {
		w.kind.fill(res, w.informer.GetStore().List())
	}
	refs := references(res)
	keepReferenced(res, refs)
	m.refs.Store(&refs)
	return res
}

// servedKinds returns the kinds the API server serves.
func servedKinds(d discovery.DiscoveryInterface) ([]*kind, error) {
	resources := map[schema.GroupVersion]map[string]bool{}
	var served []*kind
	for i := range kinds {
		k := &kinds[i]
		gv := k.resource.GroupVersion()
		names, ok := resources[gv]
		if !ok {
			list, err := d.ServerResourcesForGroupVersion(gv.String())
			if err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("discover %s: %w", gv, err)
			}
			names = map[string]bool{}
			if list != nil {
				for _, r := range list.APIResources {
					names[r.Name] = true
				}
			}
			resources[gv] = names
		}
		if names[k.resource.Resource] {
			served = append(served, k)
		}
	}
	return served, nil
}

// probeSoon asks the health probe to run now.
func (m *member) probeSoon() {
	select {
	case m.probeNow <- struct{}{}:
	default:
	}
}

// probeLoop probes the API server every ProbeInterval, and at once after a watch error.
func (m *member) probeLoop(ctx context.Context) {
	t := time.NewTicker(m.p.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.probeNow:
		}
		pctx, cancel := context.WithTimeout(ctx, m.p.opts.ProbeTimeout)
		err := m.p.opts.Probe(pctx, m.clients)
		cancel()
		if ctx.Err() != nil {
			return
		}
		m.setHealth(err)
	}
}

// setHealth records a probe's result. A stale cluster keeps its informers, and so its last
// known resources in the Input; their reflectors relist once the API server is back.
func (m *member) setHealth(err error) {
	if err != nil {
		msg := err.Error()
		m.lastErr.Store(&msg)
		if !m.stale.Swap(true) {
			m.log.Warn("cluster unreachable; keeping its last known resources", "error", err)
			m.p.stale.WithLabelValues(m.name).Set(1)
			m.p.signal(m.p.statusChanged)
		}
		return
	}
	if m.stale.Swap(false) {
		m.log.Info("cluster reachable again; its watches resync")
		m.p.stale.WithLabelValues(m.name).Set(0)
		m.p.signal(m.p.statusChanged)
	}
}

// readyz probes the API server's /readyz endpoint.
func readyz(ctx context.Context, c *Clients) error {
	rc := c.Kube.Discovery().RESTClient()
	if rc == nil {
		return fmt.Errorf("no REST client to probe /readyz")
	}
	if err := rc.Get().AbsPath("/readyz").Do(ctx).Error(); err != nil {
		return fmt.Errorf("/readyz: %w", err)
	}
	return nil
}
