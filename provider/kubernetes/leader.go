package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the name of the coordination.k8s.io Lease the controller replicas elect
// their leader with.
const LeaseName = "strait-controller"

// ElectionOptions configure an Elector. Durations default to client-go's usual 15s, 10s
// and 2s.
type ElectionOptions struct {
	// Namespace holds the Lease.
	Namespace string
	// Identity names this replica in the Lease. Default: the host name and a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's leader election timings.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Logger receives the elector's logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer registers the strait_controller_leader gauge (nil for none).
	Registerer prometheus.Registerer
}

// Elector tells whether this controller replica is the leader. Every replica watches,
// translates and serves xDS from the same state; only the leader runs the writers (status,
// mirrors, ClusterLink conditions), which use it in one of two ways:
//
//   - OnLeading(run): run starts each time this replica becomes the leader, with a context
//     that ends when it stops being the leader (the writer's goroutine);
//   - IsLeader(): checked before each write by code that runs on every replica.
//
// An Elector is a runner: Start it once.
type Elector struct {
	lock    resourcelock.Interface
	opts    ElectionOptions
	log     *slog.Logger
	leading atomic.Bool
	gauge   prometheus.Gauge

	mu        sync.Mutex
	onLeading []func(context.Context)
}

// NewElector returns an Elector that competes for the Lease LeaseName in the cluster of
// client.
func NewElector(client kubernetes.Interface, opts ElectionOptions) (*Elector, error) {
	if opts.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader election identity: %w", err)
		}
		suffix := make([]byte, 4)
		_, _ = rand.Read(suffix) // never fails
		opts.Identity = host + "_" + hex.EncodeToString(suffix)
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewDeadline <= 0 {
		opts.RenewDeadline = 10 * time.Second
	}
	if opts.RetryPeriod <= 0 {
		opts.RetryPeriod = 2 * time.Second
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, opts.Namespace, LeaseName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: opts.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election lock: %w", err)
	}
	e := newElector(opts)
	e.lock = lock
	return e, nil
}

// Identity names this replica in the Lease.
func (e *Elector) Identity() string { return e.opts.Identity }

// NewSoleLeader returns an Elector for a controller that runs without leader election: it
// is the leader from Start on.
func NewSoleLeader(opts ElectionOptions) *Elector { return newElector(opts) }

func newElector(opts ElectionOptions) *Elector {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Elector{opts: opts, log: log.With("runner", "leader-election"), gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strait_controller_leader",
		Help: "1 while this controller replica is the leader (runs the status and mirror writers), 0 otherwise.",
	})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(e.gauge)
	}
	return e
}

// Name names the runner.
func (e *Elector) Name() string { return "leader-election" }

// IsLeader says whether this replica is the leader now.
func (e *Elector) IsLeader() bool { return e.leading.Load() }

// OnLeading registers run to start each time this replica becomes the leader; its context
// ends when the replica stops being the leader or the Elector stops. Register before Start.
func (e *Elector) OnLeading(run func(ctx context.Context)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onLeading = append(e.onLeading, run)
}

// Start competes for the Lease until ctx is done, and competes again after each loss of
// leadership: a replica that lost the lease goes on serving xDS as a follower.
func (e *Elector) Start(ctx context.Context) error {
	if e.lock == nil {
		e.lead(ctx)
		return nil
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:          e.lock,
			LeaseDuration: e.opts.LeaseDuration,
			RenewDeadline: e.opts.RenewDeadline,
			RetryPeriod:   e.opts.RetryPeriod,
			// Writers stop with the leadership's context; releasing lets a follower take over
			// at once rather than after LeaseDuration.
			ReleaseOnCancel: true,
			Name:            LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: e.lead,
				OnStoppedLeading: func() {
					if e.leading.Swap(false) {
						e.gauge.Set(0)
						e.log.Info("stopped leading; following", "identity", e.opts.Identity)
					}
				},
				OnNewLeader: func(identity string) {
					if identity != e.opts.Identity {
						e.log.Info("following", "leader", identity)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
	}
	return nil
}

// lead runs the OnLeading functions until ctx ends.
func (e *Elector) lead(ctx context.Context) {
	e.leading.Store(true)
	e.gauge.Set(1)
	e.log.Info("leading", "identity", e.opts.Identity)
	e.mu.Lock()
	runs := slices.Clone(e.onLeading)
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run(ctx) })
	}
	wg.Wait()
	<-ctx.Done()
	if e.lock == nil {
		e.leading.Store(false)
		e.gauge.Set(0)
	}
}
