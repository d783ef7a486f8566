package translator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// ruleContext is what compiling one rule of a route needs to know about the route.
type ruleContext struct {
	t     *translation
	ci    *clusterIndex
	gw    *gateway
	kind  string
	ns    string
	route string // "<cluster>/<namespace>/<name>"
	// resolved keeps the first unresolved reference of the whole route.
	resolved *condError
	// notes are facts about resolved references that the route's ResolvedRefs message
	// reports, such as clusters of a ServiceImport left out because they are unreachable.
	notes []string
}

func (rc *ruleContext) unresolved(err *condError) {
	if rc.resolved == nil {
		rc.resolved = err
	}
}

// action fills the part of a route that every match of a rule shares: filters and backends.
// GRPCRoute filters and backendRefs are converted to their HTTPRoute form first, so that both
// kinds share one implementation. It returns an error when the rule must be dropped.
func (rc *ruleContext) action(r *ir.Route, filters []gwapiv1.HTTPRouteFilter, refs []gwapiv1.HTTPBackendRef) *condError {
	unsupportedValue := func(format string, args ...any) *condError {
		return newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue), format, args...)
	}
	failRequests := false
	seen := map[gwapiv1.HTTPRouteFilterType]bool{}
	for _, f := range filters {
		// The spec allows RequestMirror more than once; every other filter at most once.
		if seen[f.Type] && f.Type != gwapiv1.HTTPRouteFilterRequestMirror {
			return unsupportedValue("filter %s is given more than once", f.Type)
		}
		seen[f.Type] = true
		switch f.Type {
		case gwapiv1.HTTPRouteFilterRequestHeaderModifier:
			r.RequestHeaders = headerModifier(f.RequestHeaderModifier)
		case gwapiv1.HTTPRouteFilterResponseHeaderModifier:
			r.ResponseHeaders = headerModifier(f.ResponseHeaderModifier)
		case gwapiv1.HTTPRouteFilterRequestRedirect:
			r.Redirect = redirect(f.RequestRedirect)
		case gwapiv1.HTTPRouteFilterURLRewrite:
			if f.URLRewrite == nil {
				return unsupportedValue("URLRewrite filter without urlRewrite")
			}
			r.Rewrite = &ir.Rewrite{Path: pathModifier(f.URLRewrite.Path)}
			if f.URLRewrite.Hostname != nil {
				r.Rewrite.Hostname = string(*f.URLRewrite.Hostname)
			}
		case gwapiv1.HTTPRouteFilterRequestMirror:
			if m := rc.mirror(f.RequestMirror); m != nil {
				r.Mirrors = append(r.Mirrors, m)
			}
		case gwapiv1.HTTPRouteFilterCORS:
			r.CORS = cors(f.CORS)
		case gwapiv1.HTTPRouteFilterExtensionRef:
			// Strait defines no extension filters. The spec forbids skipping a filter that
			// cannot be resolved: the requests it would have processed get a 500.
			name := ""
			if f.ExtensionRef != nil {
				name = fmt.Sprintf(" %s/%s %s", f.ExtensionRef.Group, f.ExtensionRef.Kind, f.ExtensionRef.Name)
			}
			rc.unresolved(newCondError(string(gwapiv1.RouteConditionResolvedRefs), string(gwapiv1.RouteReasonInvalidKind),
				"extensionRef%s is not a filter Strait knows", name))
			failRequests = true
		default:
			return unsupportedValue("filter %s is not supported", f.Type)
		}
	}
	if r.Redirect != nil && r.Rewrite != nil {
		return newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonIncompatibleFilters),
			"RequestRedirect and URLRewrite cannot be used in one rule")
	}
	if failRequests {
		r.Redirect = nil
		r.DirectResponse = &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
		return nil
	}
	if r.Redirect != nil {
		return nil // A redirect answers by itself; backendRefs are not used.
	}
	backends, err := rc.backends(refs)
	if err != nil {
		return err
	}
	if len(backends) == 0 {
		// No backend, or all of weight 0: the spec requires a 500.
		r.DirectResponse = &ir.DirectResponse{StatusCode: http.StatusInternalServerError}
		return nil
	}
	r.Backends = backends
	return nil
}

// backends resolves a rule's weighted backendRefs. An unresolved reference keeps its weight
// with no backend name, so its share of the requests gets a 500 as the spec requires.
func (rc *ruleContext) backends(refs []gwapiv1.HTTPBackendRef) ([]*ir.WeightedBackend, *condError) {
	var out []*ir.WeightedBackend
	for _, ref := range refs {
		weight := int32(1)
		if ref.Weight != nil {
			weight = *ref.Weight
		}
		if weight <= 0 {
			continue
		}
		wb := &ir.WeightedBackend{Weight: uint32(weight)}
		for _, f := range ref.Filters {
			switch f.Type {
			case gwapiv1.HTTPRouteFilterRequestHeaderModifier:
				wb.RequestHeaders = headerModifier(f.RequestHeaderModifier)
			case gwapiv1.HTTPRouteFilterResponseHeaderModifier:
				wb.ResponseHeaders = headerModifier(f.ResponseHeaderModifier)
			default:
				return nil, newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue),
					"backendRef filter %s is not supported; only header modifiers are", f.Type)
			}
		}
		b, err := rc.t.resolveBackendRef(rc.ci, rc.gw.key, rc.kind, rc.ns, ref.BackendObjectReference)
		if err != nil {
			rc.unresolved(err)
		} else {
			wb.Backend = b.Name
			rc.noteUnreachable(b)
		}
		out = append(out, wb)
	}
	return out, nil
}

// mirror resolves a RequestMirror filter; an unresolved backend drops the mirror and is
// reported in ResolvedRefs.
func (rc *ruleContext) mirror(f *gwapiv1.HTTPRequestMirrorFilter) *ir.Mirror {
	if f == nil {
		return nil
	}
	b, err := rc.t.resolveBackendRef(rc.ci, rc.gw.key, rc.kind, rc.ns, f.BackendRef)
	if err != nil {
		rc.unresolved(err)
		return nil
	}
	m := &ir.Mirror{Backend: b.Name, Numerator: 100, Denominator: 100}
	switch {
	case f.Fraction != nil:
		m.Numerator, m.Denominator = f.Fraction.Numerator, 100
		if f.Fraction.Denominator != nil {
			m.Denominator = *f.Fraction.Denominator
		}
	case f.Percent != nil:
		m.Numerator = *f.Percent
	}
	return m
}

// noteUnreachable notes the exporting clusters of a ServiceImport backend that the proxy
// cannot reach (other networks): their endpoints are left out, and the route says so.
func (rc *ruleContext) noteUnreachable(b *ir.Backend) {
	if b.Target.Kind != ir.TargetServiceImport {
		return
	}
	if u := rc.t.idx.unreachableClusters(b.Target); len(u) > 0 {
		note := fmt.Sprintf("ServiceImport %s/%s: endpoints of %s are not used: other networks are not reachable until the east-west tunnel exists",
			b.Target.Namespace, b.Target.Name, strings.Join(u, ", "))
		if !slices.Contains(rc.notes, note) {
			rc.notes = append(rc.notes, note)
		}
	}
}

func headerModifier(f *gwapiv1.HTTPHeaderFilter) *ir.HeaderModifier {
	if f == nil {
		return nil
	}
	m := &ir.HeaderModifier{Remove: f.Remove}
	for _, h := range f.Set {
		m.Set = append(m.Set, ir.Header{Name: string(h.Name), Value: h.Value})
	}
	for _, h := range f.Add {
		m.Add = append(m.Add, ir.Header{Name: string(h.Name), Value: h.Value})
	}
	return m
}

func redirect(f *gwapiv1.HTTPRequestRedirectFilter) *ir.Redirect {
	r := &ir.Redirect{StatusCode: http.StatusFound}
	if f == nil {
		return r
	}
	if f.Scheme != nil {
		r.Scheme = *f.Scheme
	}
	if f.Hostname != nil {
		r.Hostname = string(*f.Hostname)
	}
	if f.Port != nil {
		r.Port = uint32(*f.Port)
	}
	if f.StatusCode != nil {
		r.StatusCode = *f.StatusCode
	}
	r.Path = pathModifier(f.Path)
	return r
}

func pathModifier(p *gwapiv1.HTTPPathModifier) *ir.PathModifier {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwapiv1.FullPathHTTPPathModifier:
		if p.ReplaceFullPath != nil {
			return &ir.PathModifier{Type: ir.ReplaceFullPath, Value: *p.ReplaceFullPath}
		}
	case gwapiv1.PrefixMatchHTTPPathModifier:
		if p.ReplacePrefixMatch != nil {
			return &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: *p.ReplacePrefixMatch}
		}
	}
	return nil
}

func cors(f *gwapiv1.HTTPCORSFilter) *ir.CORS {
	if f == nil {
		return nil
	}
	c := &ir.CORS{MaxAge: f.MaxAge}
	if f.AllowCredentials != nil {
		c.AllowCredentials = *f.AllowCredentials
	}
	for _, o := range f.AllowOrigins {
		c.AllowOrigins = append(c.AllowOrigins, string(o))
	}
	for _, m := range f.AllowMethods {
		c.AllowMethods = append(c.AllowMethods, string(m))
	}
	for _, h := range f.AllowHeaders {
		c.AllowHeaders = append(c.AllowHeaders, string(h))
	}
	for _, h := range f.ExposeHeaders {
		c.ExposeHeaders = append(c.ExposeHeaders, string(h))
	}
	return c
}

// sessionAffinity translates a rule's sessionPersistence.
func sessionAffinity(sp *gwapiv1.SessionPersistence, routeName string) (*ir.SessionAffinity, *condError) {
	if sp == nil {
		return nil, nil
	}
	a := &ir.SessionAffinity{Type: ir.AffinityCookie}
	if sp.Type != nil && *sp.Type == gwapiv1.HeaderBasedSessionPersistence {
		a.Type = ir.AffinityHeader
	}
	if sp.SessionName != nil {
		a.Name = *sp.SessionName
	} else {
		// A stable default per route, so two routes do not share sessions by accident.
		a.Name = "strait-session-" + strings.NewReplacer("/", "-").Replace(routeName)
	}
	if sp.AbsoluteTimeout != nil {
		d, err := parseDuration(*sp.AbsoluteTimeout)
		if err != nil {
			return nil, err
		}
		if sp.CookieConfig == nil || sp.CookieConfig.LifetimeType == nil || *sp.CookieConfig.LifetimeType == gwapiv1.PermanentCookieLifetimeType {
			a.TTL = d
		}
	}
	return a, nil
}

// parseDuration parses a Gateway API duration (GEP-2257: e.g. "1h", "10s", "500ms").
func parseDuration(d gwapiv1.Duration) (time.Duration, *condError) {
	v, err := time.ParseDuration(string(d))
	if err != nil || v < 0 {
		return 0, newCondError(string(gwapiv1.RouteConditionAccepted), string(gwapiv1.RouteReasonUnsupportedValue), "invalid duration %q", d)
	}
	return v, nil
}
