package upstream

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// A request that could not connect to its endpoint sent nothing, so any request, whatever
// its method, may go to another endpoint instead: the proxy's own codec (Exchange.Conn) and
// RoundTrip both do so through reconnect. This is not a retry of the route's policy and
// takes nothing from max_retries: the request reaches at most one backend, and a refused
// connection costs the backend nothing. It is Envoy's retry on connect failure or reset
// before request, with the previous_hosts host predicate and previous_priorities, always on.

// maxEndpointsTried bounds the endpoints one request tries to connect to.
const maxEndpointsTried = 3

// triedEndpoints are the endpoints a request tried, the last one being the one it is on.
type triedEndpoints struct {
	eps [maxEndpointsTried]*Endpoint
	n   int
}

func (t *triedEndpoints) add(ep *Endpoint) {
	t.eps[t.n] = ep
	t.n++
}

// reconnect moves a request that could not connect to the last of its tried endpoints to
// another endpoint: it accounts for the failure (a connect failure, and a 503 for outlier
// detection), picks another endpoint as pickOther does, and moves the request's accounting
// there. It returns nil, accounting for nothing, when the request has tried as many
// endpoints as it may or no other endpoint is left; the caller then fails the request as
// usual.
func (c *Cluster) reconnect(cfg *clusterConfig, tried *triedEndpoints, hash *uint64) *Endpoint {
	if tried.n >= maxEndpointsTried {
		return nil
	}
	snap := c.snap.Load()
	if snap == nil {
		return nil
	}
	next := snap.pickOther(hash, tried.eps[:tried.n])
	if next == nil {
		return nil
	}
	ep := tried.eps[tried.n-1]
	c.connectFailed(cfg.spec.outlier, ep)
	c.stats.connectRetries.Add(1)
	// The endpoint refuses connections: its idle ones are dead too.
	cfg.transport.idle.drop(ep.addr)
	ep.active.Add(-1)
	next.active.Add(1)
	next.requests.Add(1)
	tried.add(next)
	return next
}

// pickOther returns an endpoint for a request that failed to connect to the endpoints in
// tried, nil if no other may take it: the load balancer's pick as if the tried endpoints
// were gone, so that a request stays in its priority level while the level has another
// endpoint, and a level all of whose endpoints were tried gives its load to the next, by
// the usual priority, locality and health rules.
func (s *snapshot) pickOther(hash *uint64, tried []*Endpoint) *Endpoint {
	return s.without(tried).pick(hash)
}

// without returns the snapshot of the same endpoints but those in tried, built once per
// snapshot for a single endpoint: while an endpoint that went away is still in the
// configuration, every request it takes needs the same one. (Drawing from the snapshot
// itself until another endpoint comes up would cost nothing to build, but would advance
// round robin past the next endpoint and send every request to the failing one first.)
func (s *snapshot) without(tried []*Endpoint) *snapshot {
	if len(tried) == 1 {
		if o := s.other.Load(); o != nil && o.without == tried[0] {
			return o.snap
		}
	}
	rest := make([]*Endpoint, 0, len(s.eps))
	for _, ep := range s.eps {
		if !slices.Contains(tried, ep) {
			rest = append(rest, ep)
		}
	}
	snap := &snapshot{}
	if len(rest) > 0 {
		snap = buildSnapshot(s.spec, rest)
	}
	if len(tried) == 1 {
		s.other.Store(&otherSnapshot{without: tried[0], snap: snap})
	}
	return snap
}

// otherSnapshot is a snapshot without one endpoint.
type otherSnapshot struct {
	without *Endpoint
	snap    *snapshot
}

// maxReplayBody is the most of a request body kept so that the request can be sent again.
const maxReplayBody = 64 << 10

// errBodyNotReplayable refuses to rewind a request body more of which was read than kept.
var errBodyNotReplayable = errors.New("request body too large to send again")

// heldBody is the body of a request that may be sent again when nothing of it reached the
// upstream: to another endpoint after a connect failure (see RoundTrip), or by net/http on
// another connection when a pooled one turns out closed before the request was written
// (see reusedConn). It keeps what was read of the body, up to maxReplayBody, to send it
// again from the start, and keeps the transport of a failed attempt from closing it.
//
// Reads come from one attempt at a time (net/http's write goroutine, which is done when a
// failed attempt returns), and rewind comes between attempts, so kept and pos need no lock.
type heldBody struct {
	body io.ReadCloser
	// kept is what was read of the body while it fits in maxReplayBody (nil past it, with
	// overflow set); pos is how much of it the current attempt has read.
	kept     []byte
	pos      int
	overflow bool
	// settled is set once the request can no longer be sent again: keeping stops.
	settled atomic.Bool

	mu sync.Mutex
	// held defers Close until release; closeAsked records a Close deferred.
	held, closeAsked bool
}

// holdBody holds req's body, if it has one, and lets net/http rewind it (GetBody).
func holdBody(req *http.Request) *heldBody {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	b := &heldBody{body: req.Body, held: true}
	req.Body = b
	req.GetBody = func() (io.ReadCloser, error) {
		if !b.rewind() {
			return nil, errBodyNotReplayable
		}
		return b, nil
	}
	return b
}

// Read reads what an earlier attempt read again, then the rest of the body.
func (b *heldBody) Read(p []byte) (int, error) {
	if b.pos < len(b.kept) {
		n := copy(p, b.kept[b.pos:])
		b.pos += n
		return n, nil
	}
	n, err := b.body.Read(p)
	switch {
	case b.overflow:
	case b.settled.Load() || len(b.kept)+n > maxReplayBody:
		b.kept, b.overflow = nil, true
	default:
		b.kept = append(b.kept, p[:n]...)
		b.pos = len(b.kept)
	}
	return n, err
}

// rewind starts the body again, reporting false when it cannot.
func (b *heldBody) rewind() bool {
	b.pos = 0
	return !b.overflow
}

// Close closes the body, or once released if it is held.
func (b *heldBody) Close() error {
	b.mu.Lock()
	if b.held {
		b.closeAsked = true
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.body.Close()
}

// release settles the request: Close goes through, at once if it was asked while held.
func (b *heldBody) release() {
	b.settled.Store(true)
	b.mu.Lock()
	b.held = false
	asked := b.closeAsked
	b.mu.Unlock()
	if asked {
		_ = b.body.Close()
	}
}
