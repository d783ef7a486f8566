// Package status writes the statuses the translator computes to the objects in the member
// clusters, through their status subresources.
//
// The Writer is its own goroutine with a queue keyed by object: a burst of translations
// coalesces into one write per object with the newest status. Each write reads the live object
// first and updates it only when Strait's part of its status really changed, so an unchanged
// translation writes nothing (a status write is itself an object change that triggers the next
// translation; writing unconditionally would loop). Entries of other controllers are kept.
package status

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"

	"github.com/strait-gw/strait/provider/kubernetes/internal/keyqueue"
	"github.com/strait-gw/strait/translator"
)

// Client reaches the API server of one member cluster.
type Client struct {
	// Gateway writes the status of Gateway API kinds.
	Gateway gwclient.Interface
	// Dynamic writes the status of Strait's own kinds (BackendTrafficPolicy).
	Dynamic dynamic.Interface
	// MCS writes the status of ServiceExports.
	MCS mcsclient.Interface
}

// Clients returns the client of a member cluster; false when there is no such cluster (it
// was removed: writes to it are dropped). It is called for every write, so a cluster whose
// credentials changed gets its new client.
type Clients func(cluster string) (Client, bool)

// Options configure a Writer.
type Options struct {
	// Clients gives the client of each member cluster.
	Clients Clients
	// IsLeader reports whether this controller may write; nil means always. While it returns
	// false, writes are skipped (the wanted statuses are kept): call Resync when leadership
	// is gained.
	IsLeader func() bool
	// Registerer registers the writer's metrics; nil for none.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// workers is the number of concurrent writes.
const workers = 4

// Key names one object whose status Strait writes.
type Key struct {
	Cluster, Kind, Namespace, Name string
}

// LogValue logs a Key as its fields.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cluster", k.Cluster), slog.String("kind", k.Kind),
		slog.String("namespace", k.Namespace), slog.String("name", k.Name))
}

// Writer writes translated statuses to the member clusters. It is safe for concurrent use.
type Writer struct {
	opts    Options
	log     *slog.Logger
	queue   *keyqueue.Queue[Key]
	metrics *metrics

	mu sync.Mutex
	// wanted holds the newest status of every object of the last Update. A nil status means
	// "remove Strait's entries": the object had a status before and the translator no longer
	// gives it one (a route whose Strait parent went away).
	wanted map[Key]wanted
}

// wanted is the status Strait wants an object to have.
type wanted struct {
	status any
	// uid is the object's: an object deleted and created again under the same name (within
	// one translation's debounce) has a new UID, and its status must be written even when it
	// equals the old object's.
	uid types.UID
}

// New returns a Writer; Start runs it.
func New(opts Options) (*Writer, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("status writer metrics: %w", err)
	}
	w := &Writer{
		opts:    opts,
		log:     log.With("component", "status-writer"),
		metrics: m,
		wanted:  map[Key]wanted{},
	}
	w.queue = keyqueue.New("writing status", "object", w.log, w.write)
	return w, nil
}

// Name names the runner in logs.
func (w *Writer) Name() string { return "status-writer" }

// Update hands the writer the statuses of a new translation; it never blocks on the API
// servers. Objects whose status differs from the previous Update's are queued; an object the
// previous Update had and this one lacks is queued so that Strait's entries leave it.
func (w *Writer) Update(statuses []translator.Status) {
	next := make(map[Key]wanted, len(statuses))
	for _, s := range statuses {
		next[Key{s.Cluster, s.Kind, s.Namespace, s.Name}] = wanted{s.Status, s.UID}
	}
	w.mu.Lock()
	prev := w.wanted
	var changed []Key
	for k, st := range next {
		if old, ok := prev[k]; !ok || old.uid != st.uid || !statusEqual(old.status, st.status) {
			changed = append(changed, k)
		}
	}
	for k, old := range prev {
		if _, ok := next[k]; ok || !kinds[k.Kind].removable {
			continue
		}
		// Remembered as nil until written (forgetRemoved), so that the removal happens once
		// even when more Updates come before it.
		next[k] = wanted{}
		if old.status != nil {
			changed = append(changed, k)
		}
	}
	w.wanted = next
	w.mu.Unlock()
	for _, k := range changed {
		w.queue.Add(k)
	}
}

// Resync queues every known object again, e.g. when this controller becomes the leader.
func (w *Writer) Resync() {
	w.mu.Lock()
	keys := slices.Collect(maps.Keys(w.wanted))
	w.mu.Unlock()
	for _, k := range keys {
		w.queue.Add(k)
	}
}

// Start writes until ctx is done.
func (w *Writer) Start(ctx context.Context) error {
	w.queue.Run(ctx, workers)
	return nil
}

// write brings the status of one object in line with the newest wanted status.
func (w *Writer) write(ctx context.Context, key Key) error {
	if w.opts.IsLeader != nil && !w.opts.IsLeader() {
		w.metrics.writes.WithLabelValues(key.Kind, resultNotLeader).Inc()
		return nil
	}
	w.mu.Lock()
	want, known := w.wanted[key]
	w.mu.Unlock()
	if !known {
		return nil // Neither wanted nor to be cleaned any more.
	}
	kind, ok := kinds[key.Kind]
	if !ok {
		w.metrics.writes.WithLabelValues(key.Kind, resultUnsupported).Inc()
		w.log.Warn("no status writer for this kind", "kind", key.Kind)
		return nil
	}
	client, ok := w.opts.Clients(key.Cluster)
	if !ok {
		return nil // The cluster was removed.
	}
	// Conflicts are retried at once with a fresh read: another writer (or our own earlier
	// write seen through a stale read) changed the object, and the merge must start over.
	var result string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := kind.write(ctx, client, key.Namespace, key.Name, want.status, metav1.NewTime(time.Now()))
		result = r
		if apierrors.IsConflict(err) {
			w.metrics.writes.WithLabelValues(key.Kind, resultConflict).Inc()
		}
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		// Deleted meanwhile: its status went with it.
		result, err = resultGone, nil
	case err != nil && wait.Interrupted(err):
		err = fmt.Errorf("conflicts persisted: %w", err)
	}
	if err != nil {
		w.metrics.writes.WithLabelValues(key.Kind, resultError).Inc()
		return fmt.Errorf("%s %s/%s in cluster %s: %w", key.Kind, key.Namespace, key.Name, key.Cluster, err)
	}
	w.metrics.writes.WithLabelValues(key.Kind, result).Inc()
	if want.status == nil {
		w.forgetRemoved(key)
	}
	return nil
}

// forgetRemoved forgets a key whose Strait entries were removed, unless a newer Update wants
// a status for it again.
func (w *Writer) forgetRemoved(key Key) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, ok := w.wanted[key]; ok && st.status == nil {
		delete(w.wanted, key)
	}
}

// Results of a write, the "result" label of strait_status_writes_total.
const (
	resultWritten     = "written"
	resultUnchanged   = "unchanged"
	resultNotOurs     = "not_ours"
	resultGone        = "gone"
	resultConflict    = "conflict"
	resultError       = "error"
	resultNotLeader   = "not_leader"
	resultUnsupported = "unsupported_kind"
)

type metrics struct {
	writes *prometheus.CounterVec // by kind and result
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_status_writes_total",
			Help: "Status writes by object kind and result: written, unchanged (no-op skipped), not_ours, gone (object deleted), conflict (retried), error, not_leader, unsupported_kind.",
		}, []string{"kind", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	return m, reg.Register(m.writes)
}
