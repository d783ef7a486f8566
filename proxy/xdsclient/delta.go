package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// wildcardName subscribes to every resource of a type.
const wildcardName = "*"

// deltaStream is one incremental ADS stream.
type deltaStream struct {
	c   *Client
	out *outbox[*discoveryv3.DeltaDiscoveryRequest]
	// subscribed are the names this stream subscribed to, for the types subscribed by name.
	subscribed [numTypes]names
	// opened marks the types subscribed to by name that a request was sent for.
	opened [numTypes]bool
}

// runDelta runs a delta ADS stream until it breaks.
func (c *Client) runDelta(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open delta stream: %w", err)
	}
	c.log.Info("connected to xds server", "protocol", "delta")
	d := &deltaStream{c: c, out: newOutbox[*discoveryv3.DeltaDiscoveryRequest]()}
	for t := range numTypes {
		d.subscribed[t] = make(names)
	}
	// Resubscribing with the versions held lets the server send only what changed, and
	// tell which of those resources are gone.
	for _, t := range allTypes {
		if t.wildcard() {
			d.send(&discoveryv3.DeltaDiscoveryRequest{
				TypeUrl:                 kinds[t].url,
				ResourceNamesSubscribe:  []string{wildcardName},
				InitialResourceVersions: c.state.versions(t),
			})
		}
	}
	d.resubscribe(c.state.wanted())
	return pump(ctx, cancel, stream, d.out, d.handle)
}

func (d *deltaStream) send(req *discoveryv3.DeltaDiscoveryRequest) {
	req.Node = d.c.node
	d.out.push(req)
}

// handle processes one response: its resources update the state, and the response is
// acknowledged once the configuration is applied, or rejected.
func (d *deltaStream) handle(resp *discoveryv3.DeltaDiscoveryResponse) {
	t, ok := typeOf(resp.GetTypeUrl())
	if !ok {
		d.ack(resp, fmt.Errorf("unexpected resource type %s", resp.GetTypeUrl()))
		return
	}
	s := d.c.state
	want := s.wanted()
	var errs []error
	for i, r := range resp.GetResources() {
		if !t.wildcard() && !want[t][r.GetName()] {
			continue // unsubscribed from since
		}
		name, e, err := decode(t, r.GetResource())
		if err == nil && name != r.GetName() {
			err = fmt.Errorf("named %q in its body", name)
		}
		if err != nil {
			errs = append(errs, resourceError(t, r.GetName(), i, err))
			continue
		}
		e.version = r.GetVersion()
		s.resources[t][name] = e
	}
	for _, name := range resp.GetRemovedResources() {
		delete(s.resources[t], name)
	}
	want, err := d.c.settle(t)
	d.resubscribe(want)
	d.ack(resp, errors.Join(append(errs, err)...))
}

// resubscribe brings the stream's subscriptions by name to want.
func (d *deltaStream) resubscribe(want [numTypes]names) {
	for _, t := range allTypes {
		if t.wildcard() {
			continue
		}
		var subscribe, unsubscribe []string
		for name := range want[t] {
			if !d.subscribed[t][name] {
				subscribe = append(subscribe, name)
				d.subscribed[t][name] = true
			}
		}
		for name := range d.subscribed[t] {
			if !want[t][name] {
				unsubscribe = append(unsubscribe, name)
				delete(d.subscribed[t], name)
			}
		}
		// Nothing to change, nothing to send: an empty first request would even subscribe
		// to every resource (legacy wildcard).
		if len(subscribe) == 0 && len(unsubscribe) == 0 {
			continue
		}
		slices.Sort(subscribe)
		slices.Sort(unsubscribe)
		req := &discoveryv3.DeltaDiscoveryRequest{
			TypeUrl:                  kinds[t].url,
			ResourceNamesSubscribe:   subscribe,
			ResourceNamesUnsubscribe: unsubscribe,
		}
		if !d.opened[t] {
			// The state holds only resources still referenced, hence subscribed to.
			req.InitialResourceVersions = d.c.state.versions(t)
			d.opened[t] = true
		}
		d.send(req)
	}
}

// ack acknowledges a response, or rejects it when err is not nil.
func (d *deltaStream) ack(resp *discoveryv3.DeltaDiscoveryResponse, err error) {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	if err != nil {
		req.ErrorDetail = d.c.nack(resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), err)
	}
	d.send(req)
}
