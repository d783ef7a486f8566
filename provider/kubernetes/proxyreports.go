package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/strait-gw/strait/translator"
)

// Replicas share their proxies' reports in Leases labeled proxyReportsLabel, one per
// replica, with the reports as JSON in the annotation of the same name.
const proxyReportsLabel = "strait.dev/proxy-reports"

// LocalReports is what this replica's xDS server knows of the proxies connected to it
// (xds.Server implements it).
type LocalReports interface {
	ProxyReports() map[string]translator.ProxyReport
	ProxyReport(node string) translator.ProxyReport
	ProxyChanges() <-chan struct{}
}

// SharedReportsOptions configure SharedReports.
type SharedReportsOptions struct {
	// Namespace holds the Leases: the leader election's.
	Namespace string
	// Identity names this replica: the leader election's.
	Identity string
	// Period is how often a replica renews its Lease and reads the others' (default 5s); a
	// Lease not renewed for three periods is ignored, its replica presumed gone.
	Period time.Duration
	Logger *slog.Logger
}

// SharedReports lets the leader write Gateway statuses from every replica's proxies: proxies
// connect to any replica, and each replica knows only its own. Each replica publishes the
// reports of its proxies in a Lease of its own, renewed every period and at once (within a
// second) when they change; ProxyReport adds to a node's local report those of the other
// live replicas. It is a runner; start it on every replica.
type SharedReports struct {
	kube  kubernetes.Interface
	local LocalReports
	opts  SharedReportsOptions
	log   *slog.Logger
	name  string // of this replica's Lease
	// changes gets a token when a node's merged report may have changed.
	changes chan struct{}

	mu sync.Mutex
	// remote holds the other live replicas' reports, summed by node.
	remote map[string]translator.ProxyReport
}

// NewSharedReports returns SharedReports over local, this replica's reports.
func NewSharedReports(kube kubernetes.Interface, local LocalReports, opts SharedReportsOptions) *SharedReports {
	if opts.Period <= 0 {
		opts.Period = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	sum := sha256.Sum256([]byte(opts.Identity))
	return &SharedReports{
		kube: kube, local: local, opts: opts,
		log:     log.With("component", "proxy-reports"),
		name:    "strait-proxies-" + hex.EncodeToString(sum[:6]),
		changes: make(chan struct{}, 1),
		remote:  map[string]translator.ProxyReport{},
	}
}

// Name names the runner in logs.
func (s *SharedReports) Name() string { return "proxy reports" }

// ProxyReport returns node's report over every live replica.
func (s *SharedReports) ProxyReport(node string) translator.ProxyReport {
	s.mu.Lock()
	remote, ok := s.remote[node]
	s.mu.Unlock()
	local := s.local.ProxyReport(node)
	if !ok {
		return local
	}
	return addReports(local, remote)
}

// ProxyChanges receives a value after a report of this replica's or another's changed.
func (s *SharedReports) ProxyChanges() <-chan struct{} { return s.changes }

// Start publishes and reads the reports until ctx ends, then deletes this replica's Lease.
func (s *SharedReports) Start(ctx context.Context) error {
	tick := time.NewTicker(s.opts.Period)
	defer tick.Stop()
	var debounce <-chan time.Time
	s.publish(ctx)
	s.read(ctx)
	for {
		select {
		case <-ctx.Done():
			s.withdraw()
			return nil
		case <-s.local.ProxyChanges():
			s.notify()
			if debounce == nil {
				debounce = time.After(time.Second)
			}
			continue
		case <-debounce:
			debounce = nil
		case <-tick.C:
		}
		s.publish(ctx)
		s.read(ctx)
	}
}

// withdraw deletes this replica's Lease, so that the others stop counting its proxies now.
func (s *SharedReports) withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.kube.CoordinationV1().Leases(s.opts.Namespace).Delete(ctx, s.name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		s.log.Warn("cannot delete this replica's proxy reports", "lease", s.name, "error", err)
	}
}

// publish writes this replica's reports into its Lease, renewing it.
func (s *SharedReports) publish(ctx context.Context) {
	data, err := json.Marshal(s.local.ProxyReports())
	if err != nil {
		s.log.Error("cannot encode proxy reports", "error", err)
		return
	}
	leases := s.kube.CoordinationV1().Leases(s.opts.Namespace)
	now := metav1.NewMicroTime(time.Now())
	duration := int32(math.Ceil((3 * s.opts.Period).Seconds()))
	lease, err := leases.Get(ctx, s.name, metav1.GetOptions{})
	missing := apierrors.IsNotFound(err)
	switch {
	case missing:
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.opts.Namespace,
			Labels: map[string]string{proxyReportsLabel: "true"}}}
	case err != nil:
		s.log.Warn("cannot read this replica's proxy reports", "lease", s.name, "error", err)
		return
	}
	lease.Annotations = map[string]string{proxyReportsLabel: string(data)}
	lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: &s.opts.Identity, LeaseDurationSeconds: &duration, RenewTime: &now}
	if missing {
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
	} else {
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("cannot publish this replica's proxy reports", "lease", s.name, "error", err)
	}
}

// read sums the reports of the other replicas whose Leases are live.
func (s *SharedReports) read(ctx context.Context) {
	list, err := s.kube.CoordinationV1().Leases(s.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: proxyReportsLabel + "=true"})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot read the other replicas' proxy reports", "error", err)
		}
		return
	}
	remote := map[string]translator.ProxyReport{}
	for _, l := range list.Items {
		if l.Name == s.name || !live(&l, time.Now()) {
			continue
		}
		var reports map[string]translator.ProxyReport
		if err := json.Unmarshal([]byte(l.Annotations[proxyReportsLabel]), &reports); err != nil {
			s.log.Warn("ignoring a replica's proxy reports", "lease", l.Name, "error", err)
			continue
		}
		for node, r := range reports {
			remote[node] = addReports(remote[node], r)
		}
	}
	s.mu.Lock()
	changed := !reflect.DeepEqual(remote, s.remote)
	s.remote = remote
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

func (s *SharedReports) notify() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// live reports whether a replica renewed its Lease within the Lease's duration.
func live(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second))
}

// addReports sums two reports of one node from different replicas.
func addReports(a, b translator.ProxyReport) translator.ProxyReport {
	out := translator.ProxyReport{Proxies: a.Proxies + b.Proxies, Current: a.Current + b.Current, Rejection: a.Rejection}
	if out.Rejection == nil {
		out.Rejection = b.Rejection
	}
	out.Addresses = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Addresses), b.Addresses...))))
	return out
}
