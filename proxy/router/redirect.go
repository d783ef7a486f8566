package router

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Redirect answers a request with a redirect to a Location built from the request.
type Redirect struct {
	// Scheme replaces the request's scheme; "" keeps it.
	Scheme string
	// Host replaces the request's host; "" keeps it.
	Host string
	// Port is the Location's port; 0 derives it (see Location).
	Port uint32
	// StatusCode is 301, 302, 303, 307 or 308.
	StatusCode int
	// StripQuery drops the request's query string.
	StripQuery bool

	fullPath string // path_redirect, which may carry its own query; "" when unset
	rewrite  pathRewrite
}

// redirectCodes maps Envoy's response codes to HTTP status codes.
var redirectCodes = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  http.StatusMovedPermanently,
	routev3.RedirectAction_FOUND:              http.StatusFound,
	routev3.RedirectAction_SEE_OTHER:          http.StatusSeeOther,
	routev3.RedirectAction_TEMPORARY_REDIRECT: http.StatusTemporaryRedirect,
	routev3.RedirectAction_PERMANENT_REDIRECT: http.StatusPermanentRedirect,
}

// defaultPorts are the well-known ports of the schemes that have one.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// Location returns the redirect's target for r, with Gateway API's semantics:
//
//   - The scheme is Scheme, or the request's (https when it came over TLS).
//   - The host is Host, or the request's host.
//   - The port is Port; else the well-known port of Scheme when it is set; else the port
//     the request's Host header named, that is the listener's port as the client sees it.
//     A port that is the scheme's well-known port is left out.
//   - The path is the route's path_redirect, or the request's path after the route's
//     prefix_rewrite or regex_rewrite; the query string is kept unless StripQuery is set or
//     path_redirect carries a query of its own.
//
// p is what Match returned for r.
func (rd *Redirect) Location(r *http.Request, p Params) string {
	scheme, port := "http", p.Port
	if r.TLS != nil {
		scheme = "https"
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
		if d, ok := defaultPorts[scheme]; ok {
			port = d
		}
	}
	if rd.Port != 0 {
		port = strconv.FormatUint(uint64(rd.Port), 10)
	}
	if port == defaultPorts[scheme] {
		port = ""
	}
	host := p.Host
	if rd.Host != "" {
		host = rd.Host
	}

	path, query, hasQuery := rd.rewrite.apply(p.Path), "", false
	if r.URL != nil {
		query, hasQuery = r.URL.RawQuery, r.URL.RawQuery != "" || r.URL.ForceQuery
	}
	if rd.StripQuery {
		query, hasQuery = "", false
	}
	if rd.fullPath != "" {
		var ownQuery string
		var own bool
		if path, ownQuery, own = strings.Cut(rd.fullPath, "?"); own {
			// path_redirect's own query replaces the request's, StripQuery or not.
			query, hasQuery = ownQuery, true
		}
	}

	var b strings.Builder
	b.Grow(len(scheme) + len(host) + len(port) + len(path) + len(query) + 5)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

func compileRedirect(a *routev3.RedirectAction, m *routeMatch) (*Redirect, error) {
	if err := checkFields(a, "scheme_redirect", "https_redirect", "host_redirect", "port_redirect",
		"path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query"); err != nil {
		return nil, err
	}
	code, ok := redirectCodes[a.GetResponseCode()]
	if !ok {
		return nil, fmt.Errorf("response_code: unknown %v", a.GetResponseCode())
	}
	out := &Redirect{
		Scheme:     asciiLower(a.GetSchemeRedirect()),
		Host:       a.GetHostRedirect(),
		Port:       a.GetPortRedirect(),
		StatusCode: code,
		StripQuery: a.GetStripQuery(),
	}
	if a.GetHttpsRedirect() {
		out.Scheme = "https"
	}
	if out.Scheme != "" && !validScheme(out.Scheme) {
		return nil, fmt.Errorf("scheme_redirect: invalid scheme %q", out.Scheme)
	}
	if strings.ContainsAny(out.Host, ":/?#@ ") {
		return nil, fmt.Errorf("host_redirect: %q is not a host name (a port goes in port_redirect)", out.Host)
	}
	switch p := a.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PathRedirect:
		if out.fullPath = p.PathRedirect; !strings.HasPrefix(out.fullPath, "/") {
			out.fullPath = "/" + out.fullPath // as Envoy does
		}
	case *routev3.RedirectAction_PrefixRewrite:
		out.rewrite = compilePrefixRewrite(p.PrefixRewrite, m)
	case *routev3.RedirectAction_RegexRewrite:
		rw, err := compileRegexRewrite(p.RegexRewrite)
		if err != nil {
			return nil, fmt.Errorf("regex_rewrite: %w", err)
		}
		out.rewrite = rw
	case nil:
	default:
		return nil, errors.New("unsupported path rewrite")
	}
	return out, nil
}

// validScheme checks RFC 3986's scheme syntax: a letter, then letters, digits, "+", "-", ".".
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := 'a' <= c && c <= 'z'
		other := '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
		if !letter && (i == 0 || !other) {
			return false
		}
	}
	return s != ""
}
