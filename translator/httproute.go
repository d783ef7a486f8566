package translator

import (
	"fmt"
	"regexp"
	"strings"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// httpAttachment is a route attached to an HTTP or HTTPS listener for some host names.
type httpAttachment struct {
	// kind is HTTPRoute or GRPCRoute; object is the route, "<cluster>/<namespace>/<name>".
	kind, object string
	hostnames    []string
	routes       []*rankedRoute
}

// rankedRoute is an IR route with what orders it among the routes of one host (the spec's
// precedence, then the route's age and name, then rule and match order).
type rankedRoute struct {
	route *ir.Route
	// grpc is the precedence of a GRPCRoute match; nil for HTTPRoutes.
	grpc   *grpcPrecedence
	age    int64 // creation time, Unix nanoseconds
	object string
	rule   int
	match  int
}

// compileHTTPRoute translates an HTTPRoute's rules for one Gateway.
func (t *translation) compileHTTPRoute(ci *clusterIndex, gw *gateway, r *gwapiv1.HTTPRoute) *compiled {
	rc := &ruleContext{t: t, ci: ci, gw: gw, kind: "HTTPRoute", ns: r.Namespace, route: ci.info.Name + "/" + r.Namespace + "/" + r.Name}
	var ranked []*rankedRoute
	var invalid []string
	var firstErr *condError
	for i := range r.Spec.Rules {
		rule := &r.Spec.Rules[i]
		routes, err := rc.httpRule(i, rule)
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("rule %d: %s", i, err.Msg))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for j, route := range routes {
			ranked = append(ranked, &rankedRoute{route: route, age: r.CreationTimestamp.UnixNano(), object: r.Namespace + "/" + r.Name, rule: i, match: j})
		}
	}
	return rc.result(ranked, invalid, firstErr)
}

// result turns the rules of a route into its compiled form for attachment.
func (rc *ruleContext) result(ranked []*rankedRoute, invalid []string, firstErr *condError) *compiled {
	c := &compiled{resolved: rc.resolved, notes: rc.notes}
	switch {
	case len(ranked) == 0 && firstErr != nil:
		c.accepted = firstErr
		c.accepted.Msg = strings.Join(invalid, "; ")
		return c
	case len(invalid) > 0:
		// The spec requires this prefix for rules that are dropped rather than kept at their
		// last good state.
		c.partial = "Dropped Rule(s): " + strings.Join(invalid, "; ")
	}
	c.attach = func(l *listener, hostnames []string) {
		l.http = append(l.http, &httpAttachment{kind: rc.kind, object: rc.route, hostnames: hostnames, routes: ranked})
	}
	return c
}

// httpRule translates one rule into one IR route per match.
func (rc *ruleContext) httpRule(i int, rule *gwapiv1.HTTPRouteRule) ([]*ir.Route, *condError) {
	tmpl := ir.Route{}
	if rule.Name != nil {
		tmpl.RuleName = string(*rule.Name)
	}
	// Everything that can drop the rule is checked before its backends are resolved, so
	// that a dropped rule leaves no trace in the statuses of what it refers to.
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwapiv1.HTTPRouteMatch{{}}
	}
	irMatches := make([]ir.Match, len(matches))
	for j := range matches {
		var err *condError
		if irMatches[j], err = httpMatch(&matches[j]); err != nil {
			return nil, err
		}
		if irMatches[j].PathType != ir.PathPrefix && replacesPrefixMatch(rule.Filters) {
			return nil, newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue),
				"ReplacePrefixMatch needs a PathPrefix match")
		}
	}
	if err := ruleTimeouts(&tmpl, rule.Timeouts); err != nil {
		return nil, err
	}
	if rule.Retry != nil {
		tmpl.Retry = &ir.Retry{Attempts: 1}
		if rule.Retry.Attempts != nil {
			tmpl.Retry.Attempts = *rule.Retry.Attempts
		}
		for _, code := range rule.Retry.Codes {
			tmpl.Retry.Codes = append(tmpl.Retry.Codes, int(code))
		}
		if rule.Retry.Backoff != nil {
			d, err := parseDuration(*rule.Retry.Backoff)
			if err != nil {
				return nil, err
			}
			tmpl.Retry.Backoff = d
		}
	}
	affinity, err := sessionAffinity(rule.SessionPersistence, rc.route)
	if err != nil {
		return nil, err
	}
	tmpl.SessionAffinity = affinity
	if err := rc.action(&tmpl, rule.Filters, rule.BackendRefs); err != nil {
		return nil, err
	}

	out := make([]*ir.Route, 0, len(matches))
	for j, m := range irMatches {
		route := tmpl
		route.Name = fmt.Sprintf("%s/rule/%d/match/%d", rc.route, i, j)
		route.Match = m
		out = append(out, &route)
	}
	return out, nil
}

// replacesPrefixMatch reports whether a URLRewrite or RequestRedirect filter replaces the
// matched path prefix, which only a PathPrefix match has.
func replacesPrefixMatch(filters []gwapiv1.HTTPRouteFilter) bool {
	for _, f := range filters {
		var p *gwapiv1.HTTPPathModifier
		switch {
		case f.Type == gwapiv1.HTTPRouteFilterURLRewrite && f.URLRewrite != nil:
			p = f.URLRewrite.Path
		case f.Type == gwapiv1.HTTPRouteFilterRequestRedirect && f.RequestRedirect != nil:
			p = f.RequestRedirect.Path
		}
		if p != nil && p.Type == gwapiv1.PrefixMatchHTTPPathModifier {
			return true
		}
	}
	return false
}

func ruleTimeouts(r *ir.Route, t *gwapiv1.HTTPRouteTimeouts) *condError {
	if t == nil {
		return nil
	}
	r.Timeouts = &ir.Timeouts{}
	if t.Request != nil {
		d, err := parseDuration(*t.Request)
		if err != nil {
			return err
		}
		r.Timeouts.Request = d
	}
	if t.BackendRequest != nil {
		d, err := parseDuration(*t.BackendRequest)
		if err != nil {
			return err
		}
		r.Timeouts.Backend = d
	}
	if r.Timeouts.Request > 0 && r.Timeouts.Backend > r.Timeouts.Request {
		return newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue),
			"timeouts.backendRequest must not be longer than timeouts.request")
	}
	return nil
}

// httpMatch translates a match, checking regular expressions (RE2, as Envoy and Go use).
func httpMatch(m *gwapiv1.HTTPRouteMatch) (ir.Match, *condError) {
	out := ir.Match{PathType: ir.PathPrefix, Path: "/"}
	if p := m.Path; p != nil {
		if p.Type != nil {
			out.PathType = ir.PathMatchType(*p.Type)
		}
		if p.Value != nil {
			out.Path = *p.Value
		}
		switch out.PathType {
		case ir.PathPrefix:
			// "/foo/" and "/foo" match the same paths: whole segments under /foo.
			if len(out.Path) > 1 {
				out.Path = strings.TrimRight(out.Path, "/")
			}
		case ir.PathExact:
		case ir.PathRegex:
			if err := checkRegex(out.Path); err != nil {
				return out, err
			}
		default:
			return out, newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue), "unsupported path match type %q", out.PathType)
		}
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if seen[name] {
			continue // The spec: only the first of equivalent header names counts.
		}
		seen[name] = true
		sm := ir.StringMatch{Name: name, Type: ir.MatchExact, Value: h.Value}
		if h.Type != nil && *h.Type == gwapiv1.HeaderMatchRegularExpression {
			sm.Type = ir.MatchRegex
			if err := checkRegex(h.Value); err != nil {
				return out, err
			}
		}
		out.Headers = append(out.Headers, sm)
	}
	seen = map[string]bool{}
	for _, q := range m.QueryParams {
		if seen[string(q.Name)] {
			continue
		}
		seen[string(q.Name)] = true
		sm := ir.StringMatch{Name: string(q.Name), Type: ir.MatchExact, Value: q.Value}
		if q.Type != nil && *q.Type == gwapiv1.QueryParamMatchRegularExpression {
			sm.Type = ir.MatchRegex
			if err := checkRegex(q.Value); err != nil {
				return out, err
			}
		}
		out.QueryParams = append(out.QueryParams, sm)
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out, nil
}

func checkRegex(expr string) *condError {
	if _, err := regexp.Compile(expr); err != nil {
		return newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue), "invalid regular expression %q: %v", expr, err)
	}
	return nil
}

// before reports whether a takes precedence over b among the routes of one host, in the
// order the HTTPRoute spec gives: exact path, then regular expression, then the longest
// prefix; then a method match; then more header matches; then more query parameter matches;
// then the older route, the route name, rule and match order. Two GRPCRoute matches are
// ranked by the GRPCRoute spec instead (see grpcPrecedence).
func (a *rankedRoute) before(b *rankedRoute) bool {
	if a.grpc != nil && b.grpc != nil {
		if *a.grpc != *b.grpc {
			return a.grpc.before(b.grpc)
		}
		return a.tieBefore(b)
	}
	am, bm := &a.route.Match, &b.route.Match
	if ra, rb := pathRank(am.PathType), pathRank(bm.PathType); ra != rb {
		return ra < rb
	}
	if len(am.Path) != len(bm.Path) {
		return len(am.Path) > len(bm.Path)
	}
	if (am.Method != "") != (bm.Method != "") {
		return am.Method != ""
	}
	if len(am.Headers) != len(bm.Headers) {
		return len(am.Headers) > len(bm.Headers)
	}
	if len(am.QueryParams) != len(bm.QueryParams) {
		return len(am.QueryParams) > len(bm.QueryParams)
	}
	return a.tieBefore(b)
}

// before orders GRPCRoute matches by the spec's precedence.
func (a *grpcPrecedence) before(b *grpcPrecedence) bool {
	if a.service != b.service {
		return a.service > b.service
	}
	if a.method != b.method {
		return a.method > b.method
	}
	return a.headers > b.headers
}

// tieBefore orders routes whose matches are equally specific: the older route, the route
// name, then rule and match order.
func (a *rankedRoute) tieBefore(b *rankedRoute) bool {
	if a.age != b.age {
		return a.age < b.age
	}
	if a.object != b.object {
		return a.object < b.object
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.match < b.match
}

func pathRank(t ir.PathMatchType) int {
	switch t {
	case ir.PathExact:
		return 0
	case ir.PathRegex:
		return 1
	}
	return 2
}
