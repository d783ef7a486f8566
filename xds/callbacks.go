package xds

import (
	"context"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
)

// callbacks observes the xDS streams: connected nodes, responses sent and NACKs. The server
// calls them synchronously from each stream's goroutine.
type callbacks struct {
	log     *slog.Logger
	metrics *metrics

	mu sync.Mutex
	// streams maps each open stream to its node id, known from its first request.
	streams map[streamKey]string
	// nodes counts the open streams of each node id.
	nodes map[string]int
	// sent is the last response of each type on each SotW stream.
	sent map[streamKey]map[string]sentResponse
}

var _ serverv3.Callbacks = (*callbacks)(nil)

// streamKey identifies a stream; SotW and delta streams are numbered separately.
type streamKey struct {
	delta bool
	id    int64
}

type sentResponse struct {
	nonce, version string
}

func newCallbacks(log *slog.Logger, m *metrics) *callbacks {
	return &callbacks{
		log:     log,
		metrics: m,
		streams: make(map[streamKey]string),
		nodes:   make(map[string]int),
		sent:    make(map[streamKey]map[string]sentResponse),
	}
}

// OnStreamOpen implements serverv3.Callbacks.
func (c *callbacks) OnStreamOpen(context.Context, int64, string) error { return nil }

// OnStreamClosed implements serverv3.Callbacks.
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(streamKey{id: id}) }

// OnDeltaStreamOpen implements serverv3.Callbacks.
func (c *callbacks) OnDeltaStreamOpen(context.Context, int64, string) error { return nil }

// OnDeltaStreamClosed implements serverv3.Callbacks.
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.closed(streamKey{delta: true, id: id})
}

// OnStreamRequest implements serverv3.Callbacks.
//
// A SotW NACK carries the version the client still runs, which differs from the snapshot's,
// so the cache would answer it at once with the rejected resources and the client would
// reject them again, in a tight loop until the next update. Setting the request's version to
// the rejected one makes the cache wait for a new version instead.
func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	key := streamKey{id: id}
	node := c.observe(key, req.GetNode())
	if detail := req.GetErrorDetail(); detail != nil {
		c.nack(node, req.GetTypeUrl(), req.GetResponseNonce(), detail)
		c.mu.Lock()
		last, ok := c.sent[key][req.GetTypeUrl()]
		c.mu.Unlock()
		if ok && last.nonce == req.GetResponseNonce() {
			req.VersionInfo = last.version
		}
	}
	return nil
}

// OnStreamResponse implements serverv3.Callbacks.
func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.metrics.pushes.WithLabelValues(typeLabel(resp.GetTypeUrl())).Inc()
	key := streamKey{id: id}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent[key] == nil {
		c.sent[key] = make(map[string]sentResponse)
	}
	c.sent[key][resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetVersionInfo()}
}

// OnStreamDeltaRequest implements serverv3.Callbacks. A delta NACK needs no damping: the
// server already counts the rejected resources as sent and waits for new versions.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	node := c.observe(streamKey{delta: true, id: id}, req.GetNode())
	if detail := req.GetErrorDetail(); detail != nil {
		c.nack(node, req.GetTypeUrl(), req.GetResponseNonce(), detail)
	}
	return nil
}

// OnStreamDeltaResponse implements serverv3.Callbacks.
func (c *callbacks) OnStreamDeltaResponse(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.metrics.pushes.WithLabelValues(typeLabel(resp.GetTypeUrl())).Inc()
}

// OnFetchRequest implements serverv3.Callbacks; REST fetches are not served.
func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return nil
}

// OnFetchResponse implements serverv3.Callbacks.
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}

// observe returns the node id of a stream, learning it from the stream's first request.
func (c *callbacks) observe(key streamKey, node *corev3.Node) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.streams[key]; ok {
		return id
	}
	id := node.GetId()
	c.streams[key] = id
	c.nodes[id]++
	c.metrics.connected.Set(float64(len(c.nodes)))
	return id
}

func (c *callbacks) closed(key streamKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sent, key)
	id, ok := c.streams[key]
	if !ok {
		return // closed before its first request
	}
	delete(c.streams, key)
	if c.nodes[id]--; c.nodes[id] <= 0 {
		delete(c.nodes, id)
	}
	c.metrics.connected.Set(float64(len(c.nodes)))
}

// connected reports whether a client of node (a proxy or a proxyless client) has a stream open.
func (c *callbacks) connected(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[node] > 0
}

func (c *callbacks) nack(node, typeURL, nonce string, detail *statuspb.Status) {
	c.metrics.nacks.WithLabelValues(node, typeLabel(typeURL)).Inc()
	c.log.Warn("xds client rejected configuration",
		"node", node, "type", typeURL, "nonce", nonce,
		"code", detail.GetCode(), "error", detail.GetMessage())
}
