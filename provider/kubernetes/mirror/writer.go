// Package mirror keeps the objects that stand for exported Services in the member clusters:
// mirror Services with their EndpointSlices, and ServiceImports (see translator.ComputeMirrors
// for what is wanted where).
//
// The Writer computes the wanted objects from each new translator Input in its own goroutine
// and reconciles one cluster at a time from a rate-limited queue: it lists the objects carrying
// Strait's label in the cluster, creates the missing ones, updates those whose Strait-set fields
// differ, and deletes those no longer wanted. It never touches an object without the label.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/provider/kubernetes/internal/keyqueue"
	"github.com/strait-gw/strait/translator"
)

// Clients are the clients of one member cluster the writer uses.
type Clients struct {
	Kube kubernetes.Interface
	MCS  mcsclient.Interface
}

// Lookup returns the clients of a member cluster; false when there is no such cluster. It is
// called for every reconcile, so a cluster whose credentials changed gets its new clients.
type Lookup func(cluster string) (Clients, bool)

// Options configure a Writer.
type Options struct {
	// Clients gives the clients of each member cluster.
	Clients Lookup
	// IsLeader reports whether this controller may write; nil means always. Call Resync when
	// leadership is gained.
	IsLeader func() bool
	// Registerer registers the writer's metrics; nil for none.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// resyncPeriod is how often every cluster is reconciled even if nothing it wants changed, to
// repair objects changed or deleted behind Strait's back.
const resyncPeriod = 5 * time.Minute

// Writer applies the mirror objects of each Input to the member clusters.
type Writer struct {
	inputs  <-chan *translator.Input
	opts    Options
	log     *slog.Logger
	queue   *keyqueue.Queue[string]
	metrics *metrics

	mu sync.Mutex
	// wanted holds the objects each member cluster of the last Input wants. A cluster that
	// left the Input is removed: its own objects are not touched any more, and its mirrors in
	// the other clusters are no longer wanted there, so their reconcile deletes them.
	wanted map[string]*translator.ClusterMirrors
	// notes are the notes of the last Input, logged when they first appear.
	notes map[translator.MirrorNote]bool
	// importsMissing records the clusters without the ServiceImport CRD, logged once.
	importsMissing map[string]bool
}

// New returns a Writer reading inputs; Start runs it.
func New(inputs <-chan *translator.Input, opts Options) (*Writer, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("mirror writer metrics: %w", err)
	}
	w := &Writer{
		inputs:         inputs,
		opts:           opts,
		log:            log.With("component", "mirror-writer"),
		metrics:        m,
		wanted:         map[string]*translator.ClusterMirrors{},
		notes:          map[translator.MirrorNote]bool{},
		importsMissing: map[string]bool{},
	}
	w.queue = keyqueue.New("reconciling mirrors", "cluster", w.log, w.reconcile)
	return w, nil
}

// Name names the runner in logs.
func (w *Writer) Name() string { return "mirror-writer" }

// Start reads inputs and reconciles the clusters until ctx is done or inputs is closed.
func (w *Writer) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// One worker: the queue holds one item per cluster, and reconciling clusters one after
	// the other keeps the load on the API servers low; a slow cluster only delays the others.
	wg.Go(func() { w.queue.Run(ctx, 1) })
	// Deferred in this order so that cancel runs first: the worker stops when the inputs
	// end too.
	defer wg.Wait()
	defer cancel()
	ticker := time.NewTicker(resyncPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case in, ok := <-w.inputs:
			if !ok {
				return nil
			}
			w.update(in)
		case <-ticker.C:
			w.Resync()
		}
	}
}

// update computes the mirrors of in and queues the clusters whose wanted objects changed.
func (w *Writer) update(in *translator.Input) {
	m := translator.ComputeMirrors(in)
	w.mu.Lock()
	next := make(map[string]*translator.ClusterMirrors, len(m.Clusters))
	var changed []string
	for _, cm := range m.Clusters {
		next[cm.Cluster] = cm
		if old, ok := w.wanted[cm.Cluster]; !ok || !equality.Semantic.DeepEqual(old, cm) {
			changed = append(changed, cm.Cluster)
		}
	}
	w.wanted = next
	notes := make(map[translator.MirrorNote]bool, len(m.Notes))
	for _, n := range m.Notes {
		notes[n] = true
		if !w.notes[n] {
			// Never silent: an export that cannot be mirrored as asked is said once.
			w.log.Warn("exported Service not fully mirrored", "cluster", n.Cluster, "namespace", n.Namespace,
				"name", n.Name, "reason", n.Reason, "message", n.Message)
		}
	}
	w.notes = notes
	w.mu.Unlock()
	for _, c := range changed {
		w.queue.Add(c)
	}
}

// Resync queues every member cluster, e.g. when this controller becomes the leader.
func (w *Writer) Resync() {
	w.mu.Lock()
	clusters := slices.Collect(maps.Keys(w.wanted))
	w.mu.Unlock()
	for _, c := range clusters {
		w.queue.Add(c)
	}
}

// reconcile brings Strait's objects in one cluster in line with what it wants.
func (w *Writer) reconcile(ctx context.Context, cluster string) error {
	if w.opts.IsLeader != nil && !w.opts.IsLeader() {
		return nil
	}
	w.mu.Lock()
	want := w.wanted[cluster]
	w.mu.Unlock()
	if want == nil {
		return nil // The cluster left the Input.
	}
	c, ok := w.opts.Clients(cluster)
	if !ok {
		return nil
	}
	errs := []error{
		syncKind(ctx, w.metrics, serviceOps(c.Kube), want.Services),
		syncKind(ctx, w.metrics, sliceOps(c.Kube), want.EndpointSlices),
	}
	if err := syncKind(ctx, w.metrics, importOps(c.MCS), want.ServiceImports); err != nil {
		if !isMissingKind(err) {
			errs = append(errs, err)
		} else if w.noteImportsMissing(cluster) {
			w.log.Warn("the ServiceImport CRD is not installed; no ServiceImports are made in this cluster", "cluster", cluster)
		}
	}
	return errors.Join(errs...)
}

// noteImportsMissing records that cluster lacks the ServiceImport CRD and reports whether that
// is news.
func (w *Writer) noteImportsMissing(cluster string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.importsMissing[cluster] {
		return false
	}
	w.importsMissing[cluster] = true
	return true
}

// Actions on mirror objects, the "action" label of strait_mirror_writes_total.
const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionDeleted   = "deleted"
	actionUnchanged = "unchanged"
	actionNameTaken = "name_taken"
	actionError     = "error"
)

type metrics struct {
	writes *prometheus.CounterVec // by kind and action
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_mirror_writes_total",
			Help: "Mirror objects reconciled, by kind and action: created, updated, deleted, unchanged (no write), name_taken (an object Strait did not make has the name), error.",
		}, []string{"kind", "action"}),
	}
	if reg == nil {
		return m, nil
	}
	return m, reg.Register(m.writes)
}
