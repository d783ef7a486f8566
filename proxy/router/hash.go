package router

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// HashPolicy is one input of the request hash that ring-hash and Maglev load balancing use
// to keep a session on one endpoint. Exactly one of Header, Cookie, SourceIP and
// QueryParameter is set.
type HashPolicy struct {
	// Header hashes the named request header.
	Header string
	// Cookie hashes a cookie.
	Cookie *CookieHash
	// SourceIP hashes the client's IP address.
	SourceIP bool
	// QueryParameter hashes the first value of the named query parameter.
	QueryParameter string
	// Terminal stops the evaluation of the following policies once a hash is computed.
	Terminal bool

	header requestHeader
}

// CookieHash hashes the value of a cookie.
type CookieHash struct {
	// Name is the cookie's name.
	Name string
	// Path is the path of a generated cookie.
	Path string
	// TTL is the Max-Age of a generated cookie; 0 makes a session cookie.
	TTL time.Duration
	// Generate is set when the route gave a TTL: a request without the cookie is hashed on
	// a generated value, which the proxy sets with the cookie AffinityCookie returns.
	Generate bool
}

// HashKey returns the request's hash as Envoy computes it: each policy that finds its input
// contributes xxHash64 of it, combined with the rotated hash so far; ok is false when no
// policy found an input (the load balancer then picks at random).
func (rt *Route) HashKey(r *http.Request) (hash uint64, ok bool) {
	for i := range rt.HashPolicies {
		hp := &rt.HashPolicies[i]
		h, found := hp.hash(r)
		if found {
			if ok {
				hash = hash<<1 | hash>>63
			}
			hash, ok = hash^h, true
		}
		if hp.Terminal && ok {
			break
		}
	}
	return hash, ok
}

// AffinityCookie returns the cookie the proxy must set on the response to r so that the
// session sticks: for the first cookie policy that generates its cookie when r has none.
// It is nil otherwise.
func (rt *Route) AffinityCookie(r *http.Request) *http.Cookie {
	for i := range rt.HashPolicies {
		c := rt.HashPolicies[i].Cookie
		if c == nil || !c.Generate {
			continue
		}
		if _, found := cookieValue(r.Header, c.Name); found {
			return nil
		}
		// The attributes of Envoy's generated cookie. Its value is a hash of the client's
		// address that picks an endpoint, not a credential; Secure would stop clients of a
		// plain-HTTP listener from sending it back, and so from sticking to an endpoint.
		cookie := &http.Cookie{Name: c.Name, Value: generatedCookie(r), Path: c.Path, HttpOnly: true} //nolint:gosec // G124: affinity cookie, not a credential; Secure/SameSite as Envoy (see above)
		if c.TTL > 0 {
			cookie.MaxAge = int((c.TTL + time.Second - 1) / time.Second)
		}
		return cookie
	}
	return nil
}

func (hp *HashPolicy) hash(r *http.Request) (uint64, bool) {
	switch {
	case hp.Cookie != nil:
		if v, found := cookieValue(r.Header, hp.Cookie.Name); found {
			return xxhash.Sum64String(v), true
		}
		if hp.Cookie.Generate {
			return xxhash.Sum64String(generatedCookie(r)), true
		}
	case hp.SourceIP:
		if ip := remoteIP(r); ip != "" {
			return xxhash.Sum64String(ip), true
		}
	case hp.QueryParameter != "":
		if r.URL != nil {
			if v, found := queryValue(r.URL.RawQuery, hp.QueryParameter); found {
				return xxhash.Sum64String(v), true
			}
		}
	default:
		return hp.hashHeader(r)
	}
	return 0, false
}

// hashHeader hashes every value of the header, sorted so that their order does not matter,
// chaining the seed as Envoy does.
func (hp *HashPolicy) hashHeader(r *http.Request) (uint64, bool) {
	if hp.header.pseudo != notPseudo {
		v, _ := hp.header.get(netRequest{r})
		return xxhash.Sum64String(v), true
	}
	vs := r.Header[hp.header.key]
	switch len(vs) {
	case 0:
		return 0, false
	case 1:
		return xxhash.Sum64String(vs[0]), true
	}
	vs = slices.Sorted(slices.Values(vs))
	d := xxhash.New()
	var seed uint64
	for _, v := range vs {
		d.ResetWithSeed(seed)
		_, _ = d.WriteString(v)
		seed = d.Sum64()
	}
	return seed, true
}

// generatedCookie derives a cookie value from the client's address, as Envoy does, so that
// every request of a client without the cookie hashes alike until it has it.
func generatedCookie(r *http.Request) string {
	return fmt.Sprintf("%016x", xxhash.Sum64String(remoteIP(r)))
}

func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// cookieValue finds a cookie in the Cookie headers without parsing the others, stripping
// the quotes of a quoted value.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

func compileHashPolicy(hp *routev3.RouteAction_HashPolicy) (HashPolicy, error) {
	out := HashPolicy{Terminal: hp.GetTerminal()}
	if err := checkFields(hp, "header", "cookie", "connection_properties", "query_parameter", "terminal"); err != nil {
		return out, err
	}
	switch p := hp.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		if err := checkFields(p.Header, "header_name"); err != nil {
			return out, fmt.Errorf("header: %w", err)
		}
		h, err := compileRequestHeader(p.Header.GetHeaderName())
		if err != nil {
			return out, fmt.Errorf("header: %w", err)
		}
		out.Header, out.header = p.Header.GetHeaderName(), h
	case *routev3.RouteAction_HashPolicy_Cookie_:
		if err := checkFields(p.Cookie, "name", "ttl", "path"); err != nil {
			return out, fmt.Errorf("cookie: %w", err)
		}
		out.Cookie = &CookieHash{Name: p.Cookie.GetName(), Path: p.Cookie.GetPath(), Generate: p.Cookie.GetTtl() != nil}
		if out.Cookie.Generate {
			ttl, err := duration(p.Cookie.GetTtl())
			if err != nil {
				return out, fmt.Errorf("cookie: ttl: %w", err)
			}
			out.Cookie.TTL = ttl
		}
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		if err := checkFields(p.ConnectionProperties, "source_ip"); err != nil {
			return out, fmt.Errorf("connection_properties: %w", err)
		}
		out.SourceIP = p.ConnectionProperties.GetSourceIp()
		if !out.SourceIP {
			return out, errors.New("connection_properties: hashes nothing")
		}
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		if err := checkFields(p.QueryParameter, "name"); err != nil {
			return out, fmt.Errorf("query_parameter: %w", err)
		}
		out.QueryParameter = p.QueryParameter.GetName()
	}
	return out, nil
}
