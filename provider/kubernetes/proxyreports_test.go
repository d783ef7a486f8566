package kubernetes

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/strait-gw/strait/translator"
)

// fakeLocal is one replica's xDS server as SharedReports sees it.
type fakeLocal struct {
	mu      sync.Mutex
	reports map[string]translator.ProxyReport
	changes chan struct{}
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{reports: map[string]translator.ProxyReport{}, changes: make(chan struct{}, 1)}
}

func (f *fakeLocal) set(node string, r translator.ProxyReport) {
	f.mu.Lock()
	f.reports[node] = r
	f.mu.Unlock()
	select {
	case f.changes <- struct{}{}:
	default:
	}
}

func (f *fakeLocal) ProxyReports() map[string]translator.ProxyReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]translator.ProxyReport{}
	for n, r := range f.reports {
		out[n] = r
	}
	return out
}

func (f *fakeLocal) ProxyReport(node string) translator.ProxyReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reports[node]
}

func (f *fakeLocal) ProxyChanges() <-chan struct{} { return f.changes }

// TestSharedReports runs two replicas: each sees the other's proxies in a node's report,
// added to its own, and their changes; a replica that stops takes its proxies out of the
// others' reports.
func TestSharedReports(t *testing.T) {
	client := kubefake.NewClientset()
	const node = "us/default/web"
	start := func(id string, local *fakeLocal) (*SharedReports, context.CancelFunc, chan struct{}) {
		s := NewSharedReports(client, local, SharedReportsOptions{Namespace: "strait-system", Identity: id, Period: 100 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := s.Start(ctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
		return s, cancel, done
	}
	aLocal, bLocal := newFakeLocal(), newFakeLocal()
	aLocal.set(node, translator.ProxyReport{Proxies: 1, Current: 1, Addresses: []string{"10.0.0.1"}})
	a, stopA, aDone := start("a", aLocal)
	b, _, _ := start("b", bLocal)

	bLocal.set(node, translator.ProxyReport{Proxies: 1, Current: 0, Addresses: []string{"10.0.0.2"}})
	aLocal.set(node, translator.ProxyReport{Proxies: 2, Current: 2, Addresses: []string{"10.0.0.1"}})
	eventually(t, "b to count a's proxies", func() bool {
		r := b.ProxyReport(node)
		return r.Proxies == 3 && r.Current == 2 && slices.Equal(r.Addresses, []string{"10.0.0.1", "10.0.0.2"})
	})
	eventually(t, "a to count b's proxy", func() bool {
		r := a.ProxyReport(node)
		return r.Proxies == 3 && r.Current == 2
	})
	leases, err := client.CoordinationV1().Leases("strait-system").List(context.Background(), metav1.ListOptions{LabelSelector: proxyReportsLabel + "=true"})
	if err != nil || len(leases.Items) != 2 {
		t.Fatalf("report Leases: %v (error %v), want one per replica", leases, err)
	}

	stopA()
	<-aDone
	bLocal.set(node, translator.ProxyReport{Proxies: 1, Current: 1, Addresses: []string{"10.0.0.2"}})
	eventually(t, "b to forget a's proxies", func() bool {
		r := b.ProxyReport(node)
		return r.Proxies == 1 && r.Current == 1 && slices.Equal(r.Addresses, []string{"10.0.0.2"})
	})
}

// TestLiveLease checks that a replica's reports count only while it renews its Lease.
func TestLiveLease(t *testing.T) {
	now := time.Now()
	lease := func(renewed time.Time) *coordinationv1.Lease {
		d := int32(15)
		rt := metav1.NewMicroTime(renewed)
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: &d, RenewTime: &rt}}
	}
	if !live(lease(now.Add(-10*time.Second)), now) {
		t.Error("a Lease renewed 10s ago (duration 15s) is not live")
	}
	if live(lease(now.Add(-20*time.Second)), now) {
		t.Error("a Lease renewed 20s ago (duration 15s) is live")
	}
	if live(&coordinationv1.Lease{}, now) {
		t.Error("a Lease never renewed is live")
	}
}
