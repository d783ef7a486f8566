package xds

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-gw/strait/translator/ir"
)

// invalidBackendCluster is the cluster name a share of traffic with an invalid backend goes to.
//
// No Cluster of that name is ever published. For HTTP, a route that sends any share there sets
// cluster_not_found_response_code to 500, so Envoy's router answers exactly that share with 500
// while the other shares of a weighted split reach their backends; this needs no extra
// resource or filter. (A real cluster without endpoints would answer 503, and a direct response
// cannot be weighted.) When no share is valid, the route is a plain direct_response 500. For
// TCP, a connection sent there is closed, which is what an invalid backendRef means for a
// TCPRoute or TLSRoute. The name cannot collide with a Backend: those have four segments.
const invalidBackendCluster = "strait/invalid-backend"

// retryOn lists the failures retried whenever a route has a retry policy: the connection
// errors Gateway API requires, plus the route's status codes when it lists some.
const retryOn = "connect-failure,refused-stream,reset"

// addRouteTable builds the RouteConfiguration of t once, however many chains serve it.
func (b *builder) addRouteTable(t *ir.RouteTable) error {
	rc, err := b.routeConfiguration(t)
	if err != nil {
		return fmt.Errorf("route table %q: %w", t.Name, err)
	}
	if prev, ok := b.routes[t.Name]; ok && !proto.Equal(prev, rc) {
		return fmt.Errorf("route table %q: two different tables share the name", t.Name)
	}
	b.routes[t.Name] = rc
	return nil
}

func (b *builder) routeConfiguration(t *ir.RouteTable) (*routev3.RouteConfiguration, error) {
	rc := &routev3.RouteConfiguration{
		Name: t.Name,
		// Routes may name invalidBackendCluster, which never exists (the RDS default, made
		// explicit because the route table would otherwise be rejected).
		ValidateClusters: wrapperspb.Bool(false),
	}
	for _, vh := range t.VirtualHosts {
		out := &routev3.VirtualHost{Name: vh.Name, Domains: vh.Domains}
		for _, r := range vh.Routes {
			route, err := b.route(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Name, err)
			}
			out.Routes = append(out.Routes, route)
		}
		rc.VirtualHosts = append(rc.VirtualHosts, out)
	}
	return rc, nil
}

func (b *builder) route(r *ir.Route) (*routev3.Route, error) {
	match, err := routeMatch(r.Match)
	if err != nil {
		return nil, err
	}
	out := &routev3.Route{Name: r.Name, Match: match}
	actions := 0
	for _, set := range []bool{r.Redirect != nil, r.DirectResponse != nil, len(r.Backends) > 0} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		return nil, fmt.Errorf("want exactly one of redirect, direct response and backends, got %d", actions)
	}
	switch {
	case r.Redirect != nil:
		redirect, err := redirectAction(r.Match, r.Redirect)
		if err != nil {
			return nil, fmt.Errorf("redirect: %w", err)
		}
		out.Action = &routev3.Route_Redirect{Redirect: redirect}
	case r.DirectResponse != nil:
		out.Action = directResponse(r.DirectResponse.StatusCode, r.DirectResponse.Body)
	default:
		if err := b.setBackendAction(out, r); err != nil {
			return nil, err
		}
	}
	if m := r.RequestHeaders; m != nil {
		out.RequestHeadersToAdd = headersToAdd(m)
		out.RequestHeadersToRemove = m.Remove
	}
	if m := r.ResponseHeaders; m != nil {
		out.ResponseHeadersToAdd = headersToAdd(m)
		out.ResponseHeadersToRemove = m.Remove
	}
	if r.CORS != nil {
		policy, err := typedConfig(corsPolicy(r.CORS))
		if err != nil {
			return nil, fmt.Errorf("cors: %w", err)
		}
		out.TypedPerFilterConfig = map[string]*anypb.Any{wellknown.CORS: policy}
	}
	return out, nil
}

func routeMatch(m ir.Match) (*routev3.RouteMatch, error) {
	out := &routev3.RouteMatch{}
	switch m.PathType {
	case ir.PathExact:
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case ir.PathPrefix:
		// Gateway API prefixes match whole segments and ignore a trailing slash, exactly
		// what path_separated_prefix does; it cannot express the root, which "/" covers.
		if p := strings.TrimSuffix(m.Path, "/"); p == "" {
			out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
		} else {
			out.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: p}
		}
	case ir.PathRegex:
		re, err := regexMatcher(m.Path)
		if err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: re}
	default:
		return nil, fmt.Errorf("unknown path match type %q", m.PathType)
	}
	for _, h := range m.Headers {
		sm, err := stringMatcher(h)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Name, err)
		}
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 h.Name,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm},
		})
	}
	for _, q := range m.QueryParams {
		sm, err := stringMatcher(q)
		if err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", q.Name, err)
		}
		out.QueryParameters = append(out.QueryParameters, &routev3.QueryParameterMatcher{
			Name:                         q.Name,
			QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm},
		})
	}
	if m.Method != "" {
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name: ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Method},
			}},
		})
	}
	return out, nil
}

func stringMatcher(m ir.StringMatch) (*matcherv3.StringMatcher, error) {
	switch m.Type {
	case ir.MatchExact, "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Value}}, nil
	case ir.MatchRegex:
		re, err := regexMatcher(m.Value)
		if err != nil {
			return nil, err
		}
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: re}}, nil
	default:
		return nil, fmt.Errorf("unknown match type %q", m.Type)
	}
}

// regexMatcher checks the expression with Go's RE2 implementation, so that a typo becomes a
// build error here instead of a NACK from every proxy.
func regexMatcher(expr string) (*matcherv3.RegexMatcher, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("invalid regular expression: %w", err)
	}
	return &matcherv3.RegexMatcher{Regex: expr}, nil
}

func directResponse(status int, body string) *routev3.Route_DirectResponse {
	out := &routev3.DirectResponseAction{Status: uint32(status)}
	if body != "" {
		out.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}}
	}
	return &routev3.Route_DirectResponse{DirectResponse: out}
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	0:                            routev3.RedirectAction_FOUND, // Gateway API's default
	http.StatusMovedPermanently:  routev3.RedirectAction_MOVED_PERMANENTLY,
	http.StatusFound:             routev3.RedirectAction_FOUND,
	http.StatusSeeOther:          routev3.RedirectAction_SEE_OTHER,
	http.StatusTemporaryRedirect: routev3.RedirectAction_TEMPORARY_REDIRECT,
	http.StatusPermanentRedirect: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func redirectAction(m ir.Match, r *ir.Redirect) (*routev3.RedirectAction, error) {
	code, ok := redirectCodes[r.StatusCode]
	if !ok {
		return nil, fmt.Errorf("unsupported status code %d", r.StatusCode)
	}
	out := &routev3.RedirectAction{HostRedirect: r.Hostname, PortRedirect: r.Port, ResponseCode: code}
	if r.Scheme != "" {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: r.Scheme}
	}
	if p := r.Path; p != nil {
		switch p.Type {
		case ir.ReplaceFullPath:
			out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: p.Value}
		case ir.ReplacePrefixMatch:
			prefix, regex, err := prefixRewrite(m, p.Value)
			if err != nil {
				return nil, err
			}
			if regex != nil {
				out.PathRewriteSpecifier = &routev3.RedirectAction_RegexRewrite{RegexRewrite: regex}
			} else {
				out.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: prefix}
			}
		default:
			return nil, fmt.Errorf("unknown path modifier %q", p.Type)
		}
	}
	return out, nil
}

// prefixRewrite replaces the prefix matched by m with value, as Gateway API's
// ReplacePrefixMatch does: whole segments, trailing slashes ignored. Envoy's prefix_rewrite
// replaces the matched characters only, so replacing "/foo" by "/" would leave "//bar" for
// "/foo/bar"; that case strips the prefix with a regex instead.
func prefixRewrite(m ir.Match, value string) (string, *matcherv3.RegexMatchAndSubstitute, error) {
	if m.PathType != ir.PathPrefix {
		return "", nil, fmt.Errorf("ReplacePrefixMatch needs a PathPrefix match, not %q", m.PathType)
	}
	matched := strings.TrimSuffix(m.Path, "/")
	replacement := strings.TrimSuffix(value, "/")
	switch {
	case replacement == "":
		return "", &matcherv3.RegexMatchAndSubstitute{
			Pattern:      &matcherv3.RegexMatcher{Regex: "^" + regexp.QuoteMeta(matched) + "/*"},
			Substitution: "/",
		}, nil
	case matched == "":
		// The route matched "/" itself: "/bar" for "/x" must become "/bar/x".
		return replacement + "/", nil, nil
	default:
		return replacement, nil, nil
	}
}

// fullPathRewrite replaces the whole path, keeping the query string.
func fullPathRewrite(value string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{
		Pattern: &matcherv3.RegexMatcher{Regex: "^/.*$"},
		// A backslash in the substitution would start a capture group reference.
		Substitution: strings.ReplaceAll(value, `\`, `\\`),
	}
}

// setBackendAction forwards to the route's weighted backends (see invalidBackendCluster for
// shares whose backend is invalid).
func (b *builder) setBackendAction(out *routev3.Route, r *ir.Route) error {
	var weights []*routev3.WeightedCluster_ClusterWeight
	valid, filters := 0, false
	for _, wb := range r.Backends {
		if wb.Weight == 0 {
			continue // Gateway API: weight 0 receives no traffic
		}
		name, err := b.clusterName(wb.Backend)
		if err != nil {
			return err
		}
		if wb.Backend != "" {
			valid++
			if r.SessionAffinity != nil {
				b.affinity[wb.Backend] = true
			}
		}
		cw := &routev3.WeightedCluster_ClusterWeight{Name: name, Weight: wrapperspb.UInt32(wb.Weight)}
		if m := wb.RequestHeaders; m != nil {
			cw.RequestHeadersToAdd, cw.RequestHeadersToRemove = headersToAdd(m), m.Remove
			filters = true
		}
		if m := wb.ResponseHeaders; m != nil {
			cw.ResponseHeadersToAdd, cw.ResponseHeadersToRemove = headersToAdd(m), m.Remove
			filters = true
		}
		weights = append(weights, cw)
	}
	if valid == 0 {
		// Every backend is invalid or weighs nothing.
		out.Action = directResponse(http.StatusInternalServerError, "")
		return nil
	}

	action := &routev3.RouteAction{}
	if len(weights) == 1 && !filters {
		action.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: weights[0].Name}
	} else {
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{
			WeightedClusters: &routev3.WeightedCluster{Clusters: weights},
		}
	}
	if valid < len(weights) {
		action.ClusterNotFoundResponseCode = routev3.RouteAction_INTERNAL_SERVER_ERROR
	}
	if err := b.setRequestPolicies(action, r); err != nil {
		return err
	}
	out.Action = &routev3.Route_Route{Route: action}
	return nil
}

// setRequestPolicies sets what a forwarded request goes through: rewrites, mirrors,
// timeouts, retries and the hash that keeps a session on one endpoint.
func (b *builder) setRequestPolicies(action *routev3.RouteAction, r *ir.Route) error {
	if rw := r.Rewrite; rw != nil {
		if rw.Hostname != "" {
			action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Hostname}
		}
		if p := rw.Path; p != nil {
			switch p.Type {
			case ir.ReplaceFullPath:
				action.RegexRewrite = fullPathRewrite(p.Value)
			case ir.ReplacePrefixMatch:
				prefix, regex, err := prefixRewrite(r.Match, p.Value)
				if err != nil {
					return fmt.Errorf("rewrite: %w", err)
				}
				action.PrefixRewrite, action.RegexRewrite = prefix, regex
			default:
				return fmt.Errorf("rewrite: unknown path modifier %q", p.Type)
			}
		}
	}
	for _, m := range r.Mirrors {
		if m.Backend == "" {
			continue // an invalid mirror backend mirrors nothing
		}
		if _, err := b.clusterName(m.Backend); err != nil {
			return fmt.Errorf("mirror: %w", err)
		}
		fraction, err := fractionalPercent(m.Numerator, m.Denominator)
		if err != nil {
			return fmt.Errorf("mirror to %q: %w", m.Backend, err)
		}
		action.RequestMirrorPolicies = append(action.RequestMirrorPolicies, &routev3.RouteAction_RequestMirrorPolicy{
			Cluster:         m.Backend,
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: fraction},
		})
	}
	retry, err := retryPolicy(r.Retry)
	if err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	action.RetryPolicy = retry
	setTimeouts(action, r.Timeouts)
	if sa := r.SessionAffinity; sa != nil {
		hp, err := hashPolicy(sa)
		if err != nil {
			return fmt.Errorf("session affinity: %w", err)
		}
		action.HashPolicy = []*routev3.RouteAction_HashPolicy{hp}
		return nil
	}
	action.HashPolicy, err = b.backendHashPolicies(r)
	return err
}

// setTimeouts maps Gateway API timeouts. Envoy's route timeout defaults to 15s, so "no
// timeout" is an explicit 0s. Without retries there is a single attempt, so a backend timeout
// shorter than the request timeout bounds the route; with retries it bounds each attempt.
func setTimeouts(action *routev3.RouteAction, t *ir.Timeouts) {
	var request, backend time.Duration
	if t != nil {
		request, backend = t.Request, t.Backend
	}
	if backend > 0 {
		if action.RetryPolicy != nil {
			action.RetryPolicy.PerTryTimeout = durationpb.New(backend)
		} else if request == 0 || backend < request {
			request = backend
		}
	}
	action.Timeout = durationpb.New(request)
}

func retryPolicy(r *ir.Retry) (*routev3.RetryPolicy, error) {
	if r == nil || r.Attempts <= 0 {
		return nil, nil
	}
	out := &routev3.RetryPolicy{RetryOn: retryOn, NumRetries: wrapperspb.UInt32(uint32(r.Attempts))}
	for _, code := range r.Codes {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("invalid status code %d", code)
		}
		out.RetriableStatusCodes = append(out.RetriableStatusCodes, uint32(code))
	}
	if len(out.RetriableStatusCodes) > 0 {
		out.RetryOn += ",retriable-status-codes"
	}
	if r.Backoff > 0 {
		out.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(r.Backoff)}
	}
	return out, nil
}

// hashPolicy keys requests by cookie, header or client address; the backends' clusters use a
// ring hash or Maglev (see setBackendPolicies), so requests with the same key reach the same
// endpoint while the endpoint set is stable. A cookie policy makes Envoy set the cookie when
// the request has none.
func hashPolicy(sa *ir.SessionAffinity) (*routev3.RouteAction_HashPolicy, error) {
	switch sa.Type {
	case ir.AffinityCookie:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{
				Name: sa.Name,
				// A zero TTL makes a session cookie; a nil TTL would make none.
				Ttl:  durationpb.New(sa.TTL),
				Path: "/",
			},
		}}, nil
	case ir.AffinityHeader:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: sa.Name},
		}}, nil
	case ir.AffinitySourceIP:
		return &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}, nil
	default:
		return nil, fmt.Errorf("unknown type %q", sa.Type)
	}
}

// fractionalPercent expresses n/d with the coarsest Envoy denominator that is exact.
func fractionalPercent(n, d int32) (*typev3.FractionalPercent, error) {
	if d <= 0 || n < 0 || n > d {
		return nil, fmt.Errorf("invalid fraction %d/%d", n, d)
	}
	switch d {
	case 100:
		return &typev3.FractionalPercent{Numerator: uint32(n), Denominator: typev3.FractionalPercent_HUNDRED}, nil
	case 10_000:
		return &typev3.FractionalPercent{Numerator: uint32(n), Denominator: typev3.FractionalPercent_TEN_THOUSAND}, nil
	}
	return &typev3.FractionalPercent{
		Numerator:   uint32(int64(n) * 1_000_000 / int64(d)),
		Denominator: typev3.FractionalPercent_MILLION,
	}, nil
}

func corsPolicy(c *ir.CORS) *corsv3.CorsPolicy {
	out := &corsv3.CorsPolicy{
		AllowMethods:     strings.Join(c.AllowMethods, ","),
		AllowHeaders:     strings.Join(c.AllowHeaders, ","),
		ExposeHeaders:    strings.Join(c.ExposeHeaders, ","),
		AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
		// Gateway API answers every preflight at the gateway: one from an origin that is
		// not allowed gets no CORS headers rather than reaching the backend (conformance
		// test HTTPRouteCORS).
		ForwardNotMatchingPreflights: wrapperspb.Bool(false),
	}
	if c.MaxAge > 0 {
		out.MaxAge = strconv.Itoa(int(c.MaxAge))
	}
	for _, origin := range c.AllowOrigins {
		out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, originMatcher(origin))
	}
	return out
}

// originMatcher matches an exact origin, or a pattern whose "*" stands for any characters.
func originMatcher(origin string) *matcherv3.StringMatcher {
	if !strings.Contains(origin, "*") {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: origin}}
	}
	expr := strings.ReplaceAll(regexp.QuoteMeta(origin), `\*`, ".*")
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
		SafeRegex: &matcherv3.RegexMatcher{Regex: expr},
	}}
}

// headersToAdd maps Set to overwrite-or-add and Add to append-or-add.
func headersToAdd(m *ir.HeaderModifier) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, h := range m.Set {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, Value: literalHeaderValue(h.Value)},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, h := range m.Add {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, Value: literalHeaderValue(h.Value)},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// clusterName resolves a backend reference: a known Backend, or "" for an invalid one.
func (b *builder) clusterName(backend string) (string, error) {
	if backend == "" {
		return invalidBackendCluster, nil
	}
	if _, ok := b.backends[backend]; !ok {
		return "", errors.New("unknown backend " + strconv.Quote(backend))
	}
	return backend, nil
}

// literalHeaderValue escapes "%", which Envoy reads as the start of a formatter: Gateway API
// header values are literal.
func literalHeaderValue(v string) string { return strings.ReplaceAll(v, "%", "%%") }
