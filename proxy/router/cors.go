package router

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
)

// CORS headers.
const (
	headerOrigin           = "Origin"
	headerRequestMethod    = "Access-Control-Request-Method"
	headerRequestHeaders   = "Access-Control-Request-Headers"
	headerAllowOrigin      = "Access-Control-Allow-Origin"
	headerAllowCredentials = "Access-Control-Allow-Credentials"
	headerAllowMethods     = "Access-Control-Allow-Methods"
	headerAllowHeaders     = "Access-Control-Allow-Headers"
	headerMaxAge           = "Access-Control-Max-Age"
	headerExposeHeaders    = "Access-Control-Expose-Headers"
	headerVary             = "Vary"
	corsWildcard           = "*"
)

// CORS is a route's CORS policy, merged field by field from the route, its virtual host and
// the configuration (the most specific non-empty value wins), as Envoy's CORS filter does.
//
// It answers preflights itself and adds the CORS response headers to other responses as
// Envoy does, which meets Gateway API's CORS semantics: an allowed origin is echoed (never
// "*", so that credentials work), a "*" for methods or headers echoes what the preflight
// asks for, and a preflight's answer carries the exposed headers too (Envoy's filter adds
// them on the way out). Beyond Envoy, a response that echoes an origin says "Vary: Origin",
// so that caches keep the answers to different origins apart.
type CORS struct {
	// AllowMethods, AllowHeaders and ExposeHeaders are the comma-separated lists of the
	// policy; "*" in AllowMethods or AllowHeaders allows any.
	AllowMethods, AllowHeaders, ExposeHeaders string
	// MaxAge is how long, in seconds, a preflight's answer may be cached; "" sends none.
	MaxAge string
	// AllowCredentials lets requests with credentials read the response.
	AllowCredentials bool
	// ForwardNotMatchingPreflights sends a preflight from an origin that is not allowed to
	// the cluster instead of answering it (Envoy's default, true).
	ForwardNotMatchingPreflights bool

	origins   []stringMatcher
	anyOrigin bool
}

// Preflight answers a CORS preflight request (OPTIONS with Origin and
// Access-Control-Request-Method). handled is false for any other request, and for a
// preflight from an origin that is not allowed when ForwardNotMatchingPreflights is set:
// the proxy then routes the request as usual. h is the whole answer: like Envoy's CORS
// filter, which answers before the router, it gets none of the route's ResponseHeaders.
func (c *CORS) Preflight(r *http.Request) (handled bool, status int, h http.Header) {
	if r.Method != http.MethodOptions {
		return false, 0, nil
	}
	origin := firstHeader(r.Header, headerOrigin)
	method := firstHeader(r.Header, headerRequestMethod)
	if origin == "" || method == "" {
		return false, 0, nil
	}
	allowed := c.allowed(origin)
	if !allowed && c.ForwardNotMatchingPreflights {
		return false, 0, nil
	}
	h = make(http.Header, 7)
	if allowed {
		h.Set(headerAllowOrigin, origin)
		addVary(h, headerOrigin)
	}
	if c.AllowCredentials {
		h.Set(headerAllowCredentials, "true")
	}
	if c.AllowMethods == corsWildcard {
		h.Set(headerAllowMethods, method)
	} else if c.AllowMethods != "" {
		h.Set(headerAllowMethods, c.AllowMethods)
	}
	if c.AllowHeaders == corsWildcard {
		if requested := strings.Join(r.Header[headerRequestHeaders], ","); requested != "" {
			h.Set(headerAllowHeaders, requested)
		}
	} else if c.AllowHeaders != "" {
		h.Set(headerAllowHeaders, c.AllowHeaders)
	}
	if c.MaxAge != "" {
		h.Set(headerMaxAge, c.MaxAge)
	}
	if allowed && c.ExposeHeaders != "" {
		h.Set(headerExposeHeaders, c.ExposeHeaders)
	}
	return true, http.StatusOK, h
}

// ResponseHeaders adds the CORS headers to h, the headers of the response to r, when r
// comes from an allowed origin. The proxy calls it for every response of the route but
// the preflights Preflight answered.
func (c *CORS) ResponseHeaders(r *http.Request, h http.Header) {
	origin := firstHeader(r.Header, headerOrigin)
	if origin == "" || !c.allowed(origin) {
		return
	}
	h.Set(headerAllowOrigin, origin)
	addVary(h, headerOrigin)
	if c.AllowCredentials {
		h.Set(headerAllowCredentials, "true")
	}
	if c.ExposeHeaders != "" {
		h.Set(headerExposeHeaders, c.ExposeHeaders)
	}
}

// allowed follows Envoy: a matcher that matches "*" itself allows any origin.
func (c *CORS) allowed(origin string) bool {
	if c.anyOrigin {
		return true
	}
	for i := range c.origins {
		if c.origins[i].matches(origin) {
			return true
		}
	}
	return false
}

func firstHeader(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// addVary adds token to the Vary header unless it is there already.
func addVary(h http.Header, token string) {
	for _, v := range h[headerVary] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "*" || strings.EqualFold(t, token) {
				return
			}
		}
	}
	h.Add(headerVary, token)
}

// perFilterCORS returns the CORS policy among typed_per_filter_config, nil when there is
// none; the CORS filter's is the only per-route filter configuration the proxy has.
func perFilterCORS(configs map[string]*anypb.Any) (*corsv3.CorsPolicy, error) {
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	slices.Sort(names)
	var policy *corsv3.CorsPolicy
	for _, name := range names {
		if name != wellknown.CORS {
			return nil, fmt.Errorf("typed_per_filter_config[%q]: filter is not supported", name)
		}
		policy = &corsv3.CorsPolicy{}
		if err := configs[name].UnmarshalTo(policy); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config[%q]: want a %s: %w",
				name, policy.ProtoReflect().Descriptor().FullName(), err)
		}
		if err := policy.ValidateAll(); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config[%q]: %w", name, err)
		}
		if err := checkFields(policy, "allow_origin_string_match", "allow_methods", "allow_headers",
			"expose_headers", "max_age", "allow_credentials", "forward_not_matching_preflights"); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config[%q]: %w", name, err)
		}
	}
	return policy, nil
}

// compileCORS merges policies, most specific first, field by field; nil when there are none.
func compileCORS(policies ...*corsv3.CorsPolicy) (*CORS, error) {
	policies = slices.DeleteFunc(policies, func(p *corsv3.CorsPolicy) bool { return p == nil })
	if len(policies) == 0 {
		return nil, nil
	}
	out := &CORS{
		AllowMethods:     firstSet(policies, (*corsv3.CorsPolicy).GetAllowMethods),
		AllowHeaders:     firstSet(policies, (*corsv3.CorsPolicy).GetAllowHeaders),
		ExposeHeaders:    firstSet(policies, (*corsv3.CorsPolicy).GetExposeHeaders),
		MaxAge:           firstSet(policies, (*corsv3.CorsPolicy).GetMaxAge),
		AllowCredentials: firstSet(policies, (*corsv3.CorsPolicy).GetAllowCredentials).GetValue(),
		// Envoy's default is true.
		ForwardNotMatchingPreflights: true,
	}
	if fw := firstSet(policies, (*corsv3.CorsPolicy).GetForwardNotMatchingPreflights); fw != nil {
		out.ForwardNotMatchingPreflights = fw.GetValue()
	}
	for _, p := range policies {
		if len(p.GetAllowOriginStringMatch()) == 0 {
			continue
		}
		for i, m := range p.GetAllowOriginStringMatch() {
			sm, err := compileStringMatcher(m)
			if err != nil {
				return nil, fmt.Errorf("cors: allow_origin_string_match[%d]: %w", i, err)
			}
			out.origins = append(out.origins, sm)
			out.anyOrigin = out.anyOrigin || sm.matches(corsWildcard)
		}
		break
	}
	return out, nil
}

// firstSet returns the first value of field that the policies set, or its zero value.
func firstSet[T comparable](policies []*corsv3.CorsPolicy, field func(*corsv3.CorsPolicy) T) T {
	var zero T
	for _, p := range policies {
		if v := field(p); v != zero {
			return v
		}
	}
	return zero
}
