package translator

import (
	"fmt"
	"regexp"
	"strings"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// compileGRPCRoute translates a GRPCRoute's rules for one Gateway. gRPC is HTTP/2 with the
// method in the path ("/<service>/<method>"), so its rules become HTTP routes.
func (t *translation) compileGRPCRoute(ci *clusterIndex, gw *gateway, r *gwapiv1.GRPCRoute) *compiled {
	rc := &ruleContext{t: t, ci: ci, gw: gw, kind: "GRPCRoute", ns: r.Namespace, route: ci.info.Name + "/" + r.Namespace + "/" + r.Name}
	var ranked []*rankedRoute
	var invalid []string
	var firstErr *condError
	for i := range r.Spec.Rules {
		routes, precedence, err := rc.grpcRule(i, &r.Spec.Rules[i])
		if err != nil {
			invalid = append(invalid, fmt.Sprintf("rule %d: %s", i, err.Msg))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for j, route := range routes {
			ranked = append(ranked, &rankedRoute{route: route, grpc: &precedence[j], age: r.CreationTimestamp.UnixNano(), object: r.Namespace + "/" + r.Name, rule: i, match: j})
		}
	}
	return rc.result(ranked, invalid, firstErr)
}

// grpcRule translates one rule into one IR route per match, with the precedence of each.
func (rc *ruleContext) grpcRule(i int, rule *gwapiv1.GRPCRouteRule) ([]*ir.Route, []grpcPrecedence, *condError) {
	tmpl := ir.Route{}
	if rule.Name != nil {
		tmpl.RuleName = string(*rule.Name)
	}
	refs := make([]gwapiv1.HTTPBackendRef, len(rule.BackendRefs))
	for k, ref := range rule.BackendRefs {
		refs[k] = gwapiv1.HTTPBackendRef{BackendRef: ref.BackendRef, Filters: httpFilters(ref.Filters)}
	}
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwapiv1.GRPCRouteMatch{{}}
	}
	// As for HTTPRoutes, what can drop the rule is checked before its backends are resolved.
	irMatches := make([]ir.Match, len(matches))
	precedence := make([]grpcPrecedence, len(matches))
	for j := range matches {
		var err *condError
		if irMatches[j], precedence[j], err = grpcMatch(&matches[j]); err != nil {
			return nil, nil, err
		}
	}
	affinity, err := sessionAffinity(rule.SessionPersistence, rc.route)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SessionAffinity = affinity
	if err := rc.action(&tmpl, httpFilters(rule.Filters), refs); err != nil {
		return nil, nil, err
	}

	out := make([]*ir.Route, 0, len(matches))
	for j := range matches {
		route := tmpl
		route.Name = fmt.Sprintf("%s/rule/%d/match/%d", rc.route, i, j)
		route.Match = irMatches[j]
		out = append(out, &route)
	}
	return out, precedence, nil
}

// grpcPrecedence ranks a GRPCRoute match as the spec does, where the path it becomes cannot:
// more characters of service, then of method, then more header matches. A service-only match
// thus precedes a method-only one, though the first is a path prefix and the second a regular
// expression.
type grpcPrecedence struct {
	service, method, headers int
}

// httpFilters converts GRPCRoute filters to the HTTPRoute filters they are a subset of.
func httpFilters(in []gwapiv1.GRPCRouteFilter) []gwapiv1.HTTPRouteFilter {
	out := make([]gwapiv1.HTTPRouteFilter, len(in))
	for i, f := range in {
		out[i] = gwapiv1.HTTPRouteFilter{
			Type:                   gwapiv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		}
	}
	return out
}

// grpcMatch turns a gRPC method match into a path match: service and method give an exact
// path, a service alone a prefix, and anything else a regular expression.
func grpcMatch(m *gwapiv1.GRPCRouteMatch) (ir.Match, grpcPrecedence, *condError) {
	out := ir.Match{PathType: ir.PathPrefix, Path: "/"}
	var p grpcPrecedence
	if mm := m.Method; mm != nil {
		service, method := "", ""
		if mm.Service != nil {
			service = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		p.service, p.method = len(service), len(method)
		regex := mm.Type != nil && *mm.Type == gwapiv1.GRPCMethodMatchRegularExpression
		switch {
		case !regex && service != "" && method != "":
			out.PathType, out.Path = ir.PathExact, "/"+service+"/"+method
		case !regex && service != "":
			out.PathType, out.Path = ir.PathPrefix, "/"+service
		case !regex && method != "":
			out.PathType, out.Path = ir.PathRegex, "/[^/]+/"+regexp.QuoteMeta(method)
		case regex:
			if service == "" {
				service = "[^/]+"
			}
			if method == "" {
				method = "[^/]+"
			}
			out.PathType, out.Path = ir.PathRegex, "/"+service+"/"+method
			if err := checkRegex(out.Path); err != nil {
				return out, p, err
			}
		}
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := strings.ToLower(string(h.Name))
		if seen[name] {
			continue
		}
		seen[name] = true
		sm := ir.StringMatch{Name: name, Type: ir.MatchExact, Value: h.Value}
		if h.Type != nil && *h.Type == gwapiv1.GRPCHeaderMatchRegularExpression {
			sm.Type = ir.MatchRegex
			if err := checkRegex(h.Value); err != nil {
				return out, p, err
			}
		}
		out.Headers = append(out.Headers, sm)
	}
	p.headers = len(out.Headers)
	return out, p, nil
}
