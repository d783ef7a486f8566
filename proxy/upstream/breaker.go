package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ErrOverflow is returned (wrapped, naming the breaker) when a circuit breaker refuses a
// request or connection; the proxy answers 503 without trying the upstream.
var ErrOverflow = errors.New("circuit breaker overflow")

// Envoy's default thresholds.
const (
	defaultMaxConnections = 1024
	defaultMaxPending     = 1024
	defaultMaxRequests    = 1024
	defaultMaxRetries     = 3
)

// limits are a cluster's circuit breaker thresholds.
type limits struct {
	connections, pending, requests, retries int64
}

func compileLimits(cb *clusterv3.CircuitBreakers) (limits, error) {
	l := limits{connections: defaultMaxConnections, pending: defaultMaxPending, requests: defaultMaxRequests, retries: defaultMaxRetries}
	if err := onlyFields(cb, "thresholds"); err != nil {
		return l, err
	}
	for _, t := range cb.GetThresholds() {
		if err := onlyFields(t, "priority", "max_connections", "max_pending_requests", "max_requests", "max_retries", "track_remaining"); err != nil {
			return l, err
		}
		// Routes carry no priority here, so every request is DEFAULT; HIGH thresholds would
		// never apply.
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			return l, fmt.Errorf("thresholds for priority %s are not supported", t.GetPriority())
		}
		if v := t.GetMaxConnections(); v != nil {
			l.connections = int64(v.GetValue())
		}
		if v := t.GetMaxPendingRequests(); v != nil {
			l.pending = int64(v.GetValue())
		}
		if v := t.GetMaxRequests(); v != nil {
			l.requests = int64(v.GetValue())
		}
		if v := t.GetMaxRetries(); v != nil {
			l.retries = int64(v.GetValue())
		}
	}
	if l.connections == 0 {
		// An HTTP/1.1 request needs a connection; zero would refuse everything silently.
		return l, errors.New("max_connections must be positive")
	}
	return l, nil
}

// overflow counts refusals per breaker.
type overflow struct {
	connections, pending, requests, retries atomic.Uint64
}

func overflowError(breaker string, limit int64) error {
	return fmt.Errorf("%w: %s (%d)", ErrOverflow, breaker, limit)
}

// counter is a gauge with a ceiling: add fails, changing nothing, once the ceiling is reached.
type counter struct{ n atomic.Int64 }

func (c *counter) tryAdd(limit int64) bool {
	if c.n.Add(1) > limit {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *counter) done() { c.n.Add(-1) }

// slots are an HTTP/1.1 cluster's connections in use: each request holds one while in
// flight, and requests that find none free wait in line (pending) up to a bound. The bounds
// change with updates without disturbing holders.
type slots struct {
	mu      sync.Mutex
	used    int64
	max     int64
	waiters []chan struct{} // FIFO
}

// errPendingOverflow is the internal signal that the line is full.
var errPendingOverflow = errors.New("pending")

// acquire takes a slot, waiting in line if none is free and fewer than maxPending wait,
// until ctx ends or deadline passes (the zero time: never); the context with the deadline
// is made only when it has to wait.
func (s *slots) acquire(ctx context.Context, deadline time.Time, maxPending int64) error {
	s.mu.Lock()
	if s.used < s.max && len(s.waiters) == 0 {
		s.used++
		s.mu.Unlock()
		return nil
	}
	if int64(len(s.waiters)) >= maxPending {
		s.mu.Unlock()
		return errPendingOverflow
	}
	ready := make(chan struct{})
	s.waiters = append(s.waiters, ready)
	s.mu.Unlock()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}

	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ready:
			// Granted while giving up: pass the slot on.
			s.releaseLocked()
		default:
			for i, w := range s.waiters {
				if w == ready {
					s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
					break
				}
			}
		}
		return context.Cause(ctx)
	}
}

// pending returns the number of requests waiting for a slot.
func (s *slots) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}

func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked()
}

// releaseLocked hands a freed slot to the first waiter, or returns it.
func (s *slots) releaseLocked() {
	s.used--
	s.grantLocked()
}

func (s *slots) grantLocked() {
	for s.used < s.max && len(s.waiters) > 0 {
		close(s.waiters[0])
		s.waiters = s.waiters[1:]
		s.used++
	}
}

// setMax changes the number of slots; holders beyond a lowered bound keep theirs.
func (s *slots) setMax(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = n
	s.grantLocked()
}

// tcpConns are the connections DialTCP handed out, counted against max_connections. They are
// plain sockets their caller owns and closes, so closing is noticed lazily: when the count
// reaches the limit (or stats are read), connections whose socket is closed are dropped.
type tcpConns struct {
	mu       sync.Mutex
	conns    []net.Conn
	reserved int // dials under way
}

// reserve makes room for a dial, unless limit connections are open or being opened.
func (t *tcpConns) reserve(limit int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if int64(len(t.conns)+t.reserved) >= limit {
		t.pruneLocked()
		if int64(len(t.conns)+t.reserved) >= limit {
			return false
		}
	}
	t.reserved++
	return true
}

// unreserve ends a dial, keeping conn if it opened.
func (t *tcpConns) unreserve(conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reserved--
	if conn != nil {
		t.conns = append(t.conns, conn)
	}
}

// open returns the number of connections still open.
func (t *tcpConns) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pruneLocked()
	return len(t.conns)
}

func (t *tcpConns) pruneLocked() {
	t.conns = slices.DeleteFunc(t.conns, isClosed)
}

// isClosed reports whether a connection's socket has been closed, without touching it: a
// closed file descriptor refuses even a no-op Control.
func isClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	return err != nil || rc.Control(func(uintptr) {}) != nil
}
