package translator

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Runner translates every Input it receives and hands each result on. When only
// EndpointSlices changed since the last Input, it takes the endpoint fast path: the last
// proxies get fresh endpoints (RefreshEndpoints) without a full translation.
type Runner struct {
	// Inputs delivers the latest Input; a newer value may replace one not yet read.
	Inputs <-chan *Input
	// Publish receives each result. endpointsOnly is true on the fast path: then only the
	// proxies' backend localities changed and out.Statuses is the last full translation's.
	Publish func(out *Output, endpointsOnly bool)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	duration *prometheus.HistogramVec
}

// NewRunner returns a Runner whose metrics are registered with reg (nil for none).
func NewRunner(inputs <-chan *Input, publish func(*Output, bool), reg prometheus.Registerer) *Runner {
	r := &Runner{
		Inputs:  inputs,
		Publish: publish,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strait_translation_duration_seconds",
			Help:    "Time to translate an input, by kind of translation (full or endpoints).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(r.duration)
	}
	return r
}

// Name names the runner in logs.
func (r *Runner) Name() string { return "translator" }

// Start translates until ctx is done or Inputs is closed.
func (r *Runner) Start(ctx context.Context) error {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	var last *Output
	var lastIn *Input
	for {
		select {
		case <-ctx.Done():
			return nil
		case in, ok := <-r.Inputs:
			if !ok {
				return nil
			}
			out, endpointsOnly, err := r.translate(lastIn, last, in)
			if err != nil {
				// One bad input must not stop the control plane: keep the last good result.
				log.Error("translation failed; keeping the last configuration", "error", err)
				continue
			}
			last, lastIn = out, in
			r.Publish(out, endpointsOnly)
		}
	}
}

func (r *Runner) translate(lastIn *Input, last *Output, in *Input) (out *Output, endpointsOnly bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("translator panic: %v", p)
		}
	}()
	start := time.Now()
	if last != nil && SameExceptEndpoints(lastIn, in) {
		out = &Output{Proxies: RefreshEndpoints(in, last.Proxies), Statuses: last.Statuses}
		r.duration.WithLabelValues("endpoints").Observe(time.Since(start).Seconds())
		return out, true, nil
	}
	out = Translate(in)
	r.duration.WithLabelValues("full").Observe(time.Since(start).Seconds())
	return out, false, nil
}

// SameExceptEndpoints reports whether two inputs differ at most in their EndpointSlices.
func SameExceptEndpoints(a, b *Input) bool {
	if a.BindAddress != b.BindAddress || a.AddressPool != b.AddressPool || a.SharedHost != b.SharedHost || len(a.Clusters) != len(b.Clusters) {
		return false
	}
	for i := range a.Clusters {
		ca, cb := *a.Clusters[i], *b.Clusters[i]
		ca.EndpointSlices, cb.EndpointSlices = nil, nil
		if !reflect.DeepEqual(ca, cb) {
			return false
		}
	}
	return true
}
