package keyqueue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
)

func TestFailedKeyRetriedUntilHandled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	calls := map[string]int{}
	q := New("testing", "key", slog.New(slog.DiscardHandler), func(_ context.Context, k string) error {
		mu.Lock()
		defer mu.Unlock()
		calls[k]++
		if k == "flaky" && calls[k] < 3 {
			return errors.New("not yet")
		}
		if calls["flaky"] == 3 && calls["steady"] == 1 {
			cancel()
		}
		return nil
	})
	q.Add("flaky")
	q.Add("steady")
	q.Run(ctx, 2) // Returns once the handler cancels ctx.

	mu.Lock()
	defer mu.Unlock()
	if calls["flaky"] != 3 || calls["steady"] != 1 {
		t.Errorf("calls = %v, want flaky 3 (two failures, then success) and steady 1", calls)
	}
	if n := q.NumRequeues("flaky"); n != 0 {
		t.Errorf("flaky has %d requeues after its success, want 0 (forgotten)", n)
	}
}

func TestShutdownErrorNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	q := New("testing", "key", slog.New(slog.DiscardHandler), func(context.Context, string) error {
		cancel()
		return context.Canceled
	})
	defer q.ShutDown()
	q.Add("k")
	if !q.ProcessNext(ctx) {
		t.Fatal("ProcessNext reported a shut down queue")
	}
	if n := q.NumRequeues("k"); n != 0 || q.Len() != 0 {
		t.Errorf("after an error during shutdown: %d requeues, %d queued; want neither", n, q.Len())
	}
}
