// Package keyqueue runs the work of the status and mirror writers: a rate-limited queue of
// keys (an object, a cluster) in which a key queued again before it is handled is handled
// once, and a key that fails is retried with exponential backoff.
package keyqueue

import (
	"context"
	"log/slog"
	"sync"

	"k8s.io/client-go/util/workqueue"
)

// maxRetries is how many times a failing key is retried before it waits to be queued again
// (by the next change or resync).
const maxRetries = 10

// Queue hands each queued key to its handler; one worker at a time handles a given key.
type Queue[K comparable] struct {
	workqueue.TypedRateLimitingInterface[K]
	handle func(context.Context, K) error
	log    *slog.Logger
	// what the handler does and keyName the log attribute of its key, for the logs.
	what, keyName string
}

// New returns a Queue whose handler does what (in the logs, e.g. "writing status") to the
// key logged as keyName.
func New[K comparable](what, keyName string, log *slog.Logger, handle func(context.Context, K) error) *Queue[K] {
	return &Queue[K]{
		TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[K](),
			workqueue.TypedRateLimitingQueueConfig[K]{Name: keyName}),
		handle:  handle,
		log:     log,
		what:    what,
		keyName: keyName,
	}
}

// Run handles keys with workers goroutines until ctx is done, then shuts the queue down and
// returns once the workers have.
func (q *Queue[K]) Run(ctx context.Context, workers int) {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for q.ProcessNext(ctx) {
			}
		})
	}
	wg.Wait()
}

// ProcessNext handles the next key, waiting for one; false once the queue is shut down.
func (q *Queue[K]) ProcessNext(ctx context.Context) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	err := q.handle(ctx, key)
	switch {
	case err == nil:
		q.Forget(key)
	case ctx.Err() != nil:
		// Shutting down: the error is the cancellation's.
	case q.NumRequeues(key) < maxRetries:
		q.log.Warn(q.what+"; will retry", q.keyName, key, "error", err)
		q.AddRateLimited(key)
	default:
		q.log.Error(q.what+"; giving up until the next change or resync", q.keyName, key, "error", err)
		q.Forget(key)
	}
	return true
}
