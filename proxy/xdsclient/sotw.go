package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// sotwStream is one state-of-the-world ADS stream.
type sotwStream struct {
	c   *Client
	out *outbox[*discoveryv3.DiscoveryRequest]
	// nonce is the last response nonce of each type; a request must echo it or the server
	// ignores it as stale.
	nonce [numTypes]string
	// requested are the names last requested, for the types subscribed by name.
	requested [numTypes][]string
}

// runSotW runs a state-of-the-world ADS stream until it breaks.
func (c *Client) runSotW(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open state-of-the-world stream: %w", err)
	}
	c.log.Info("connected to xds server", "protocol", "sotw")
	s := &sotwStream{c: c, out: newOutbox[*discoveryv3.DiscoveryRequest]()}
	for _, t := range allTypes {
		if t.wildcard() {
			// No names: explicit "*" is not understood by every server, an empty list is.
			s.send(&discoveryv3.DiscoveryRequest{TypeUrl: kinds[t].url, VersionInfo: c.acked[t]})
		}
	}
	s.resubscribe(c.state.wanted())
	return pump(ctx, cancel, stream, s.out, s.handle)
}

func (s *sotwStream) send(req *discoveryv3.DiscoveryRequest) {
	req.Node = s.c.node
	s.out.push(req)
}

// handle processes one response. Listener and Cluster responses carry every resource of
// their type, and what they leave out is gone; the others carry those that changed, and a
// resource of theirs goes when nothing references it any more.
func (s *sotwStream) handle(resp *discoveryv3.DiscoveryResponse) {
	t, ok := typeOf(resp.GetTypeUrl())
	if !ok {
		err := fmt.Errorf("unexpected resource type %s", resp.GetTypeUrl())
		s.send(&discoveryv3.DiscoveryRequest{
			TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(),
			ErrorDetail: s.c.nack(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), err),
		})
		return
	}
	s.nonce[t] = resp.GetNonce()
	st := s.c.state
	want := st.wanted()
	var errs []error
	fresh := make(map[string]*entry, len(resp.GetResources()))
	for i, a := range resp.GetResources() {
		name, e, err := decode(t, a)
		if !t.wildcard() && name != "" && !want[t][name] {
			continue // not subscribed to
		}
		if err != nil {
			// The previous version stays, when the resource unmarshalled far enough to
			// be named.
			errs = append(errs, resourceError(t, name, i, err))
			if prev, ok := st.resources[t][name]; ok {
				fresh[name] = prev
			}
			continue
		}
		fresh[name] = e
	}
	if t.wildcard() {
		st.resources[t] = fresh
	} else {
		maps.Copy(st.resources[t], fresh)
	}
	want, applyErr := s.c.settle(t)
	err := errors.Join(append(errs, applyErr)...)
	if err == nil {
		s.c.acked[t] = resp.GetVersionInfo()
	}

	// The response's own type first: its request is the ACK and carries the names as well.
	req := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: s.c.acked[t], ResponseNonce: resp.GetNonce()}
	if !t.wildcard() {
		req.ResourceNames = want[t].sorted()
		s.requested[t] = req.ResourceNames
	}
	if err != nil {
		req.ErrorDetail = s.c.nack(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), err)
	}
	s.send(req)
	s.resubscribe(want)
}

// resubscribe requests the names in want for each type subscribed to by name whose names
// changed. A type is first requested once it has names: a request without names would ask
// for every resource of the type.
func (s *sotwStream) resubscribe(want [numTypes]names) {
	for _, t := range allTypes {
		if t.wildcard() {
			continue
		}
		next := want[t].sorted()
		if slices.Equal(next, s.requested[t]) {
			continue
		}
		s.requested[t] = next
		s.send(&discoveryv3.DiscoveryRequest{
			TypeUrl: kinds[t].url, VersionInfo: s.c.acked[t], ResponseNonce: s.nonce[t], ResourceNames: next,
		})
	}
}
