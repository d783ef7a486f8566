package router

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Envoy's defaults for what a RouteConfiguration leaves unset.
const (
	defaultTimeout         = 15 * time.Second
	defaultRetryBackOff    = 25 * time.Millisecond
	defaultMaxBackOffRatio = 10
	defaultMaxDirectBody   = 4096
)

// Compile compiles rc into a Table. It fails on anything the proxy cannot honor exactly,
// naming the virtual host, the route and the field; the caller keeps its current table and
// NACKs the update with the error.
func Compile(rc *routev3.RouteConfiguration) (*Table, error) {
	if rc == nil {
		return nil, errors.New("nil route configuration")
	}
	if err := rc.ValidateAll(); err != nil {
		return nil, fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
	}
	t, err := compileTable(rc)
	if err != nil {
		return nil, fmt.Errorf("route configuration %q: %w", rc.GetName(), err)
	}
	return t, nil
}

// scope is what a route inherits from its virtual host and configuration.
type scope struct {
	// requestHeaders and responseHeaders hold the operations of the enclosing levels,
	// outermost (the configuration) first.
	requestHeaders, responseHeaders [][]headerOp
	// cors holds the enclosing levels' CORS policies, innermost first.
	cors []*corsv3.CorsPolicy
	// mostSpecificWins applies the route's headers last instead of first.
	mostSpecificWins bool
	maxDirectBody    int
}

// enter returns the scope inside a level with these headers and CORS policy.
func (s scope) enter(req, resp []headerOp, cors *corsv3.CorsPolicy) scope {
	s.requestHeaders = append(slices.Clip(s.requestHeaders), req)
	s.responseHeaders = append(slices.Clip(s.responseHeaders), resp)
	s.cors = append([]*corsv3.CorsPolicy{cors}, s.cors...)
	return s
}

// modifier merges a route's operations with the enclosing levels' in Envoy's order.
func (s scope) modifier(levels [][]headerOp, route []headerOp) HeaderModifier {
	levels = append(slices.Clip(levels), route) // a new slice, outermost first
	if !s.mostSpecificWins {
		slices.Reverse(levels)
	}
	return joinHeaderOps(levels...)
}

func compileTable(rc *routev3.RouteConfiguration) (*Table, error) {
	if err := checkFields(rc, "name", "virtual_hosts", "validate_clusters", "typed_per_filter_config",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove", "most_specific_header_mutations_wins",
		"max_direct_response_body_size_bytes", "ignore_port_in_host_matching"); err != nil {
		return nil, err
	}
	s := scope{mostSpecificWins: rc.GetMostSpecificHeaderMutationsWins(), maxDirectBody: defaultMaxDirectBody}
	if m := rc.GetMaxDirectResponseBodySizeBytes(); m != nil {
		s.maxDirectBody = int(m.GetValue())
	}
	s, err := enterLevel(s, rc)
	if err != nil {
		return nil, err
	}

	t := &Table{Name: rc.GetName(), ValidateClusters: rc.GetValidateClusters().GetValue()}
	clusters := make(map[string]bool)
	names := make(map[string]bool)
	for i, vh := range rc.GetVirtualHosts() {
		if names[vh.GetName()] {
			return nil, fmt.Errorf("virtual_hosts[%d]: duplicate name %q", i, vh.GetName())
		}
		names[vh.GetName()] = true
		if err := t.addVirtualHost(s, vh, clusters); err != nil {
			return nil, fmt.Errorf("virtual host %q: %w", vh.GetName(), err)
		}
	}
	for c := range clusters {
		t.clusters = append(t.clusters, c)
	}
	slices.Sort(t.clusters)
	return t, nil
}

// level is a RouteConfiguration or a VirtualHost: what either passes down to its routes.
type level interface {
	GetRequestHeadersToAdd() []*corev3.HeaderValueOption
	GetRequestHeadersToRemove() []string
	GetResponseHeadersToAdd() []*corev3.HeaderValueOption
	GetResponseHeadersToRemove() []string
	GetTypedPerFilterConfig() map[string]*anypb.Any
}

// enterLevel compiles l's headers and CORS policy into the scope of its routes.
func enterLevel(s scope, l level) (scope, error) {
	req, err := compileHeaders("request", l.GetRequestHeadersToAdd(), l.GetRequestHeadersToRemove())
	if err != nil {
		return s, err
	}
	resp, err := compileHeaders("response", l.GetResponseHeadersToAdd(), l.GetResponseHeadersToRemove())
	if err != nil {
		return s, err
	}
	cors, err := perFilterCORS(l.GetTypedPerFilterConfig())
	if err != nil {
		return s, err
	}
	return s.enter(req, resp, cors), nil
}

func (t *Table) addVirtualHost(s scope, vh *routev3.VirtualHost, clusters map[string]bool) error {
	if err := checkFields(vh, "name", "domains", "routes", "typed_per_filter_config",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove"); err != nil {
		return err
	}
	s, err := enterLevel(s, vh)
	if err != nil {
		return err
	}
	out := &virtualHost{name: vh.GetName()}
	for i, r := range vh.GetRoutes() {
		rt, match, err := compileRoute(s, r)
		if err != nil {
			name := r.GetName()
			if name == "" {
				name = fmt.Sprintf("#%d", i)
			}
			return fmt.Errorf("route %q: %w", name, err)
		}
		rt.VirtualHost = out.name
		for _, c := range rt.Clusters {
			clusters[c.Name] = true
		}
		for _, m := range rt.Mirrors {
			clusters[m.Cluster] = true
		}
		out.routes = append(out.routes, rt)
		out.matches = append(out.matches, match)
	}
	for i, d := range vh.GetDomains() {
		if err := t.hosts.add(d, out); err != nil {
			return fmt.Errorf("domains[%d] (%q): %w", i, d, err)
		}
	}
	return nil
}

// compileRoute compiles a route and, apart, the conditions that select it.
func compileRoute(s scope, r *routev3.Route) (*Route, routeMatch, error) {
	// metadata only informs filters, and the proxy has none that read it.
	if err := checkFields(r, "name", "match", "route", "redirect", "direct_response", "metadata",
		"typed_per_filter_config", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove"); err != nil {
		return nil, routeMatch{}, err
	}
	rt := &Route{Name: r.GetName()}
	match, err := compileRouteMatch(r.GetMatch())
	if err != nil {
		return nil, match, fmt.Errorf("match: %w", err)
	}
	req, err := compileHeaders("request", r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove())
	if err != nil {
		return nil, match, err
	}
	resp, err := compileHeaders("response", r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove())
	if err != nil {
		return nil, match, err
	}
	rt.RequestHeaders = s.modifier(s.requestHeaders, req)
	rt.ResponseHeaders = s.modifier(s.responseHeaders, resp)
	cors, err := perFilterCORS(r.GetTypedPerFilterConfig())
	if err != nil {
		return nil, match, err
	}
	if rt.CORS, err = compileCORS(append([]*corsv3.CorsPolicy{cors}, s.cors...)...); err != nil {
		return nil, match, err
	}

	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		if err = rt.setRouteAction(a.Route, &match); err != nil {
			err = fmt.Errorf("route: %w", err)
		}
	case *routev3.Route_Redirect:
		if rt.Redirect, err = compileRedirect(a.Redirect, &match); err != nil {
			err = fmt.Errorf("redirect: %w", err)
		}
	case *routev3.Route_DirectResponse:
		if rt.DirectResponse, err = compileDirectResponse(a.DirectResponse, s.maxDirectBody); err != nil {
			err = fmt.Errorf("direct_response: %w", err)
		}
	default:
		err = errors.New("no action")
	}
	if err != nil {
		return nil, match, err
	}
	return rt, match, nil
}

// clusterNotFoundCodes maps Envoy's cluster_not_found_response_code to HTTP status codes.
var clusterNotFoundCodes = map[routev3.RouteAction_ClusterNotFoundResponseCode]int{
	routev3.RouteAction_SERVICE_UNAVAILABLE:   http.StatusServiceUnavailable,
	routev3.RouteAction_NOT_FOUND:             http.StatusNotFound,
	routev3.RouteAction_INTERNAL_SERVER_ERROR: http.StatusInternalServerError,
}

// setRouteAction compiles a forwarding action into rt; m is the route's match, whose
// prefix a prefix_rewrite replaces.
func (rt *Route) setRouteAction(a *routev3.RouteAction, m *routeMatch) error {
	if err := checkFields(a, "cluster", "weighted_clusters", "cluster_not_found_response_code",
		"prefix_rewrite", "regex_rewrite", "host_rewrite_literal", "timeout", "retry_policy",
		"request_mirror_policies", "hash_policy"); err != nil {
		return err
	}
	code, ok := clusterNotFoundCodes[a.GetClusterNotFoundResponseCode()]
	if !ok {
		return fmt.Errorf("cluster_not_found_response_code: unknown %v", a.GetClusterNotFoundResponseCode())
	}
	rt.ClusterNotFoundResponseCode = code
	switch c := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		rt.Clusters = []WeightedCluster{{Name: c.Cluster, Weight: 1}}
		rt.weights, rt.weighted = []uint64{1}, 1
	case *routev3.RouteAction_WeightedClusters:
		if err := rt.setWeightedClusters(c.WeightedClusters); err != nil {
			return fmt.Errorf("weighted_clusters: %w", err)
		}
	default:
		return errors.New("no cluster specifier")
	}

	if a.GetPrefixRewrite() != "" && a.GetRegexRewrite() != nil {
		return errors.New("prefix_rewrite and regex_rewrite are both set")
	}
	if a.GetPrefixRewrite() != "" {
		rt.rewrite = compilePrefixRewrite(a.GetPrefixRewrite(), m)
	}
	if a.GetRegexRewrite() != nil {
		var err error
		if rt.rewrite, err = compileRegexRewrite(a.GetRegexRewrite()); err != nil {
			return fmt.Errorf("regex_rewrite: %w", err)
		}
	}
	rt.HostRewrite = a.GetHostRewriteLiteral()

	rt.Timeout = defaultTimeout
	if a.GetTimeout() != nil {
		var err error
		if rt.Timeout, err = duration(a.GetTimeout()); err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
	}
	if a.GetRetryPolicy() != nil {
		var err error
		if rt.Retry, err = compileRetryPolicy(a.GetRetryPolicy()); err != nil {
			return fmt.Errorf("retry_policy: %w", err)
		}
	}
	for i, m := range a.GetRequestMirrorPolicies() {
		mirror, err := compileMirror(m)
		if err != nil {
			return fmt.Errorf("request_mirror_policies[%d]: %w", i, err)
		}
		rt.Mirrors = append(rt.Mirrors, mirror)
	}
	for i, hp := range a.GetHashPolicy() {
		policy, err := compileHashPolicy(hp)
		if err != nil {
			return fmt.Errorf("hash_policy[%d]: %w", i, err)
		}
		rt.HashPolicies = append(rt.HashPolicies, policy)
	}
	return nil
}

func (rt *Route) setWeightedClusters(wc *routev3.WeightedCluster) error {
	if err := checkFields(wc, "clusters", "total_weight"); err != nil {
		return err
	}
	for i, c := range wc.GetClusters() {
		if err := checkFields(c, "name", "weight", "request_headers_to_add", "request_headers_to_remove",
			"response_headers_to_add", "response_headers_to_remove"); err != nil {
			return fmt.Errorf("clusters[%d] (%q): %w", i, c.GetName(), err)
		}
		req, err := compileHeaders("request", c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove())
		if err != nil {
			return fmt.Errorf("clusters[%d] (%q): %w", i, c.GetName(), err)
		}
		resp, err := compileHeaders("response", c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove())
		if err != nil {
			return fmt.Errorf("clusters[%d] (%q): %w", i, c.GetName(), err)
		}
		rt.Clusters = append(rt.Clusters, WeightedCluster{
			Name:            c.GetName(),
			Weight:          c.GetWeight().GetValue(),
			RequestHeaders:  HeaderModifier{ops: req},
			ResponseHeaders: HeaderModifier{ops: resp},
		})
		rt.weighted += uint64(c.GetWeight().GetValue())
		rt.weights = append(rt.weights, rt.weighted)
	}
	if rt.weighted == 0 {
		return errors.New("the weights sum to 0")
	}
	if tw := wc.GetTotalWeight(); tw != nil && uint64(tw.GetValue()) != rt.weighted { //nolint:staticcheck // control planes still send total_weight; a mismatch must be NACKed as Envoy does
		return fmt.Errorf("total_weight %d differs from the sum of the weights, %d", tw.GetValue(), rt.weighted)
	}
	return nil
}

func compileRetryPolicy(p *routev3.RetryPolicy) (*RetryPolicy, error) {
	if err := checkFields(p, "retry_on", "num_retries", "per_try_timeout", "retriable_status_codes",
		"retry_back_off"); err != nil {
		return nil, err
	}
	out := &RetryPolicy{NumRetries: 1, BackOffBase: defaultRetryBackOff}
	for _, cond := range strings.Split(p.GetRetryOn(), ",") {
		cond = strings.TrimSpace(cond)
		if cond == "" {
			continue
		}
		on, ok := retryConditions[cond]
		if !ok {
			return nil, fmt.Errorf("retry_on: condition %q is not supported", cond)
		}
		out.On |= on
	}
	if n := p.GetNumRetries(); n != nil {
		out.NumRetries = int(n.GetValue())
	}
	var err error
	if out.PerTryTimeout, err = duration(p.GetPerTryTimeout()); err != nil {
		return nil, fmt.Errorf("per_try_timeout: %w", err)
	}
	for _, code := range p.GetRetriableStatusCodes() {
		out.RetriableStatusCodes = append(out.RetriableStatusCodes, int(code))
	}
	if b := p.GetRetryBackOff(); b != nil {
		if err := checkFields(b, "base_interval", "max_interval"); err != nil {
			return nil, fmt.Errorf("retry_back_off: %w", err)
		}
		if out.BackOffBase, err = duration(b.GetBaseInterval()); err != nil {
			return nil, fmt.Errorf("retry_back_off: base_interval: %w", err)
		}
		if out.BackOffMax, err = duration(b.GetMaxInterval()); err != nil {
			return nil, fmt.Errorf("retry_back_off: max_interval: %w", err)
		}
	}
	if out.BackOffMax == 0 {
		out.BackOffMax = defaultMaxBackOffRatio * out.BackOffBase
	}
	if out.BackOffMax < out.BackOffBase {
		return nil, errors.New("retry_back_off: max_interval is less than base_interval")
	}
	return out, nil
}

// retryConditions maps Envoy's retry_on conditions to the failures they retry; "5xx" and
// "gateway-error" include resets and connection failures, as in Envoy.
var retryConditions = map[string]RetryOn{
	"5xx":                        Retry5xx | RetryReset | RetryConnectFailure | RetryRefusedStream,
	"gateway-error":              RetryGatewayError | RetryReset | RetryConnectFailure,
	"reset":                      RetryReset,
	"reset-before-request":       RetryResetBeforeRequest,
	"connect-failure":            RetryConnectFailure,
	"retriable-4xx":              RetryRetriable4xx,
	"refused-stream":             RetryRefusedStream,
	"retriable-status-codes":     RetryRetriableStatusCodes,
	"http3-post-connect-failure": RetryHTTP3PostConnectFailure,
	"cancelled":                  RetryGRPCCancelled, //nolint:misspell // Envoy's retry_on token is spelled "cancelled"
	"deadline-exceeded":          RetryGRPCDeadlineExceeded,
	"resource-exhausted":         RetryGRPCResourceExhausted,
	"internal":                   RetryGRPCInternal,
	"unavailable":                RetryGRPCUnavailable,
}

// fractionDenominators maps Envoy's denominators to their values.
var fractionDenominators = map[typev3.FractionalPercent_DenominatorType]uint32{
	typev3.FractionalPercent_HUNDRED:      100,
	typev3.FractionalPercent_TEN_THOUSAND: 10_000,
	typev3.FractionalPercent_MILLION:      1_000_000,
}

// compileMirror compiles a mirror policy; without runtime_fraction every request is mirrored.
func compileMirror(m *routev3.RouteAction_RequestMirrorPolicy) (Mirror, error) {
	out := Mirror{Cluster: m.GetCluster(), Numerator: 100, Denominator: 100}
	if err := checkFields(m, "cluster", "runtime_fraction"); err != nil {
		return out, err
	}
	if f := m.GetRuntimeFraction(); f != nil {
		// runtime_key would let a runtime override the fraction; the proxy has no runtime.
		if err := checkFields(f, "default_value"); err != nil {
			return out, fmt.Errorf("runtime_fraction: %w", err)
		}
		d, ok := fractionDenominators[f.GetDefaultValue().GetDenominator()]
		if !ok {
			return out, fmt.Errorf("runtime_fraction: unknown denominator %v", f.GetDefaultValue().GetDenominator())
		}
		out.Numerator, out.Denominator = min(f.GetDefaultValue().GetNumerator(), d), d
	}
	return out, nil
}

func compileDirectResponse(a *routev3.DirectResponseAction, maxBody int) (*DirectResponse, error) {
	if err := checkFields(a, "status", "body"); err != nil {
		return nil, err
	}
	out := &DirectResponse{StatusCode: int(a.GetStatus())}
	if b := a.GetBody(); b != nil {
		if err := checkFields(b, "inline_string", "inline_bytes"); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		out.Body = b.GetInlineString()
		if b.GetInlineBytes() != nil {
			out.Body = string(b.GetInlineBytes())
		}
	}
	if len(out.Body) > maxBody {
		return nil, fmt.Errorf("body: %d bytes is more than max_direct_response_body_size_bytes (%d)", len(out.Body), maxBody)
	}
	return out, nil
}

// duration converts a protobuf duration; nil is 0.
func duration(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, err
	}
	if d.AsDuration() < 0 {
		return 0, errors.New("negative duration")
	}
	return d.AsDuration(), nil
}

// checkFields fails on the first field set in m that is not in supported, and on fields
// unknown to this proxy's API version: ignoring either could change what a route does.
func checkFields(m proto.Message, supported ...protoreflect.Name) error {
	if m == nil {
		return nil
	}
	pm := m.ProtoReflect()
	if !pm.IsValid() {
		return nil
	}
	var err error
	pm.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(supported, fd.Name()) {
			err = fmt.Errorf("%s is not supported", fd.Name())
		}
		return err == nil
	})
	if err == nil && len(pm.GetUnknown()) > 0 {
		err = fmt.Errorf("%s has fields this proxy does not know", pm.Descriptor().FullName())
	}
	return err
}
