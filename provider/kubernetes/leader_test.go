package kubernetes

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

// TestElector runs two replicas against one Lease: one leads and runs the writers, the
// other follows; when the leader stops, it releases the Lease and the follower takes over.
func TestElector(t *testing.T) {
	client := kubefake.NewClientset()
	newReplica := func(id string) (*Elector, *atomic.Int32, context.CancelFunc, chan struct{}) {
		e, err := NewElector(client, ElectionOptions{Namespace: "strait-system", Identity: id,
			LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var runs atomic.Int32
		e.OnLeading(func(ctx context.Context) {
			runs.Add(1)
			<-ctx.Done()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := e.Start(ctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
		return e, &runs, cancel, done
	}

	a, aRuns, stopA, aDone := newReplica("a")
	eventually(t, "a to lead", a.IsLeader)
	b, bRuns, _, _ := newReplica("b")
	// b has tried at least once: the Lease names a, and b is not leading.
	eventually(t, "b to see the Lease", func() bool {
		l, err := client.CoordinationV1().Leases("strait-system").Get(context.Background(), LeaseName, metav1.GetOptions{})
		return err == nil && *l.Spec.HolderIdentity == "a"
	})
	if b.IsLeader() || bRuns.Load() != 0 {
		t.Error("b leads while a holds the Lease")
	}
	if aRuns.Load() != 1 {
		t.Errorf("a's writer ran %d times, want 1", aRuns.Load())
	}

	stopA()
	<-aDone
	if a.IsLeader() {
		t.Error("a still leads after stopping")
	}
	eventually(t, "b to take over", b.IsLeader)
	eventually(t, "b's writer to run", func() bool { return bRuns.Load() == 1 })
}

func TestSoleLeader(t *testing.T) {
	e := NewSoleLeader(ElectionOptions{})
	ran := make(chan struct{})
	e.OnLeading(func(ctx context.Context) {
		close(ran)
		<-ctx.Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Start(ctx)
	}()
	<-ran
	if !e.IsLeader() {
		t.Error("sole leader does not lead")
	}
	cancel()
	<-done
	if e.IsLeader() {
		t.Error("still leads after stopping")
	}
}
