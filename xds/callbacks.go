package xds

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/strait-gw/strait/translator"
)

// callbacks observes the xDS streams: which node each belongs to, what it was sent, and what
// it acknowledged or rejected. The server calls them synchronously from each stream's
// goroutine.
type callbacks struct {
	log     *slog.Logger
	metrics *metrics
	// changes gets a token (without blocking) when what a node's proxies report changes: a
	// proxy connects or disconnects, or acknowledges or rejects listeners.
	changes chan struct{}

	mu sync.Mutex
	// streams holds each open stream, known from its first request.
	streams map[streamKey]*stream
	// nodes holds the open streams of each node id, so that a node's report reads only its
	// own streams.
	nodes map[string]map[streamKey]*stream
}

var _ serverv3.Callbacks = (*callbacks)(nil)

// streamKey identifies a stream; SotW and delta streams are numbered separately.
type streamKey struct {
	delta bool
	id    int64
}

// stream is one client's stream and what it reported.
type stream struct {
	node string
	// proxyless is a gRPC client's stream, not a proxy's.
	proxyless bool
	// addresses are what the proxy advertises in its node metadata (AddressesMetadataKey).
	addresses []string
	// sent is the last response of each type; acked the version of each type the client last
	// accepted; rejected the last rejection of each type, dropped when a later response is
	// accepted.
	sent     map[string]sentResponse
	acked    map[string]string
	rejected map[string]rejection
}

type sentResponse struct {
	nonce, version string
}

// rejection is a client's NACK of one version.
type rejection struct {
	version string
	detail  *statuspb.Status
}

func newCallbacks(log *slog.Logger, m *metrics) *callbacks {
	return &callbacks{
		log:     log,
		metrics: m,
		changes: make(chan struct{}, 1),
		streams: make(map[streamKey]*stream),
		nodes:   make(map[string]map[streamKey]*stream),
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
	if rejected, ok := c.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail()); ok {
		req.VersionInfo = rejected
	}
	return nil
}

// OnStreamDeltaRequest implements serverv3.Callbacks. A delta NACK needs no damping: the
// server already counts the rejected resources as sent and waits for new versions.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	c.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
	return nil
}

// OnStreamResponse implements serverv3.Callbacks.
func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.response(streamKey{id: id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

// OnStreamDeltaResponse implements serverv3.Callbacks. A delta response's system version is
// the snapshot's version of its type, as a SotW response's version is.
func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.response(streamKey{delta: true, id: id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

// OnFetchRequest implements serverv3.Callbacks; REST fetches are not served.
func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return nil
}

// OnFetchResponse implements serverv3.Callbacks.
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}

// request records a request: the stream's node on its first one, and whether it accepts or
// rejects the response it answers (by nonce; a request answering an older response says
// nothing about the last). It returns the rejected version when the request is a NACK of the
// last response.
func (c *callbacks) request(key streamKey, node *corev3.Node, typeURL, nonce string, detail *statuspb.Status) (rejected string, ok bool) {
	c.mu.Lock()
	s, known := c.streams[key]
	if !known {
		s = c.open(key, node)
	}
	last, answers := s.sent[typeURL]
	answers = answers && nonce != "" && last.nonce == nonce
	changed := !known && !s.proxyless
	switch {
	case detail != nil:
		c.metrics.nacks.WithLabelValues(s.node, typeLabel(typeURL)).Inc()
		if answers {
			s.rejected[typeURL] = rejection{version: last.version, detail: detail}
			changed = changed || typeURL == resource.ListenerType
		}
	case answers && s.acked[typeURL] != last.version:
		s.acked[typeURL] = last.version
		delete(s.rejected, typeURL)
		changed = changed || typeURL == resource.ListenerType
	}
	c.mu.Unlock()
	if detail != nil {
		c.log.Warn("xds client rejected configuration",
			"node", s.node, "type", typeURL, "nonce", nonce,
			"code", detail.GetCode(), "error", detail.GetMessage())
	}
	if changed && !s.proxyless {
		c.notify()
	}
	return last.version, detail != nil && answers
}

// open starts tracking a stream; c.mu is held.
func (c *callbacks) open(key streamKey, node *corev3.Node) *stream {
	s := &stream{
		node:      node.GetId(),
		proxyless: isProxyless(node),
		addresses: advertisedAddresses(node),
		sent:      make(map[string]sentResponse),
		acked:     make(map[string]string),
		rejected:  make(map[string]rejection),
	}
	c.streams[key] = s
	if c.nodes[s.node] == nil {
		c.nodes[s.node] = make(map[streamKey]*stream)
	}
	c.nodes[s.node][key] = s
	c.metrics.connected.Set(float64(len(c.nodes)))
	return s
}

func (c *callbacks) response(key streamKey, typeURL, nonce, version string) {
	c.metrics.pushes.WithLabelValues(typeLabel(typeURL)).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.streams[key]; ok {
		s.sent[typeURL] = sentResponse{nonce: nonce, version: version}
	}
}

func (c *callbacks) closed(key streamKey) {
	c.mu.Lock()
	s, ok := c.streams[key]
	if ok {
		delete(c.streams, key)
		if delete(c.nodes[s.node], key); len(c.nodes[s.node]) == 0 {
			delete(c.nodes, s.node)
		}
		c.metrics.connected.Set(float64(len(c.nodes)))
	}
	c.mu.Unlock()
	if ok && !s.proxyless {
		c.notify()
	}
}

func (c *callbacks) notify() {
	select {
	case c.changes <- struct{}{}:
	default: // a change is already pending; its reader will see this one too
	}
}

// connected reports whether a client of node (a proxy or a proxyless client) has a stream open.
func (c *callbacks) connected(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes[node]) > 0
}

// proxyNodes returns the node ids that proxies (not proxyless clients) are connected as.
func (c *callbacks) proxyNodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var nodes []string
	for node, streams := range c.nodes {
		for _, s := range streams {
			if !s.proxyless {
				nodes = append(nodes, node)
				break
			}
		}
	}
	return nodes
}

// report summarizes the proxies (not proxyless clients) of node against the listeners
// version currently published for it.
func (c *callbacks) report(node, listeners string) translator.ProxyReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r translator.ProxyReport
	for _, s := range c.nodes[node] {
		if s.proxyless {
			continue
		}
		r.Proxies++
		r.Addresses = append(r.Addresses, s.addresses...)
		if s.acked[resource.ListenerType] == listeners {
			r.Current++
		} else if rej, ok := s.rejected[resource.ListenerType]; ok && rej.version == listeners &&
			// Streams are a map: keep the least message, so that proxies rejecting for
			// different reasons do not make the Gateway's condition flip between reports.
			(r.Rejection == nil || rej.detail.GetMessage() < r.Rejection.Message) {
			r.Rejection = &translator.Rejection{
				AddressNotUsable: codes.Code(rej.detail.GetCode()) == codes.FailedPrecondition,
				Message:          rej.detail.GetMessage(),
			}
		}
	}
	slices.Sort(r.Addresses)
	r.Addresses = slices.Compact(r.Addresses)
	return r
}

func isProxyless(node *corev3.Node) bool {
	v := node.GetMetadata().GetFields()[ProxylessMetadataKey]
	return v.GetBoolValue() || v.GetStringValue() == "true"
}

// advertisedAddresses reads AddressesMetadataKey: a list of strings, or one string.
func advertisedAddresses(node *corev3.Node) []string {
	v := node.GetMetadata().GetFields()[AddressesMetadataKey]
	if s := v.GetStringValue(); s != "" {
		return []string{s}
	}
	var out []string
	for _, e := range v.GetListValue().GetValues() {
		if s := e.GetStringValue(); s != "" {
			out = append(out, s)
		}
	}
	return out
}
