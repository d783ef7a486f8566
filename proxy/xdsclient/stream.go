package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// adsStream is the client side of an ADS stream, delta or state of the world.
type adsStream[Req, Resp any] interface {
	Send(Req) error
	Recv() (Resp, error)
}

// outbox queues a stream's requests for a goroutine of their own to send, so that receiving
// never waits on sending. Otherwise a control plane blocked sending a large response, to a
// client blocked sending a large request (the names of thousands of clusters), would wait
// for it forever. The queue grows by a few requests per response at most.
type outbox[Req any] struct {
	mu      sync.Mutex
	pending []Req
	wake    chan struct{}
}

func newOutbox[Req any]() *outbox[Req] {
	return &outbox[Req]{wake: make(chan struct{}, 1)}
}

// push queues a request.
func (o *outbox[Req]) push(r Req) {
	o.mu.Lock()
	o.pending = append(o.pending, r)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run sends queued requests, in order, until ctx ends or a send fails.
func (o *outbox[Req]) run(ctx context.Context, send func(Req) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.wake:
		}
		o.mu.Lock()
		batch := o.pending
		o.pending = nil
		o.mu.Unlock()
		for _, r := range batch {
			if err := send(r); err != nil {
				return err
			}
		}
	}
}

// pump runs a stream until it breaks: it sends out's requests and passes each response to
// handle, in order. cancel must end the stream's context. It reports whether a response
// arrived, and why the stream ended.
func pump[Req, Resp any](ctx context.Context, cancel context.CancelFunc, s adsStream[Req, Resp], out *outbox[Req], handle func(Resp)) (bool, error) {
	var sendErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		// A send fails with io.EOF when the stream has ended; Recv then says why. Any
		// other failure is the client's own, and ends the stream.
		if err := out.run(ctx, s.Send); err != nil && !errors.Is(err, io.EOF) {
			sendErr = err
			cancel()
		}
	})
	received := false
	var err error
	for {
		var resp Resp
		if resp, err = s.Recv(); err != nil {
			break
		}
		received = true
		handle(resp)
	}
	cancel()
	wg.Wait()
	switch {
	case sendErr != nil:
		return received, fmt.Errorf("send request: %w", sendErr)
	case errors.Is(err, io.EOF):
		return received, errors.New("stream closed by the server")
	}
	return received, fmt.Errorf("receive: %w", err)
}
