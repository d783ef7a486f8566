// Package latest hands the newest value of a stream to every subscriber: the providers
// publish translator inputs through it.
package latest

import "sync"

// Value hands the newest value to every subscriber. Each subscriber has a channel of
// capacity one; a new value replaces one the subscriber has not read yet, so a slow
// subscriber only ever sees the newest value and the publisher never blocks.
type Value[T any] struct {
	mu     sync.Mutex
	subs   []chan T
	value  T
	has    bool
	closed bool
}

// Subscribe returns a channel that receives the current value, if any, and every later
// one. It is closed by Close, after the last value.
func (l *Value[T]) Subscribe() <-chan T {
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

// Publish replaces the current value and hands it to every subscriber.
func (l *Value[T]) Publish(v T) {
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

// Close closes every subscriber's channel; later subscribers get a closed channel too.
func (l *Value[T]) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, ch := range l.subs {
		close(ch)
	}
	l.subs = nil
}
