package file

import "sync"

// latest hands the newest value to every subscriber. Each subscriber has a channel of
// capacity one; a new value replaces one the subscriber has not read yet, so a slow
// subscriber only ever sees the newest value and the publisher never blocks.
type latest[T any] struct {
	mu     sync.Mutex
	subs   []chan T
	value  T
	has    bool
	closed bool
}

// subscribe returns a channel that receives the current value, if any, and every later
// one. It is closed by close, after the last value.
func (l *latest[T]) subscribe() <-chan T {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan T, 1)
	if l.has {
		ch <- l.value
	}
	if l.closed {
		close(ch)
		return ch
	}
	l.subs = append(l.subs, ch)
	return ch
}

// publish replaces the current value and hands it to every subscriber.
func (l *latest[T]) publish(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.value, l.has = v, true
	for _, ch := range l.subs {
		// Holding the lock makes this the only sender: whether the drain or the subscriber
		// takes an unread older value, the channel is then empty and the send cannot block.
		select {
		case <-ch:
		default:
		}
		ch <- v
	}
}

// close closes every subscriber's channel; later subscribers get a closed channel too.
func (l *latest[T]) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, ch := range l.subs {
		close(ch)
	}
	l.subs = nil
}
