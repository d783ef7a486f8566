package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"golang.org/x/net/http/httpguts"
)

// Request is what routes match on, so that requests parsed by the proxy's own HTTP/1.1
// codec match without becoming *http.Request values first.
type Request interface {
	// Method is the request method.
	Method() string
	// Authority is the Host header (or :authority), port included.
	Authority() string
	// EscapedPath is the request target's path as sent, without the query; "/" if empty.
	EscapedPath() string
	// RawQuery is the query string without its "?".
	RawQuery() string
	// Header returns the field named by the canonical key, several values comma-joined.
	Header(key string) (string, bool)
	// TLS reports whether the request came over TLS.
	TLS() bool
}

// Match returns the route for r, or nil when none matches (the proxy answers 404), with the
// parameters the route's helpers need for r.
func (t *Table) Match(r *http.Request) (*Route, Params) { return t.MatchRequest(netRequest{r}) }

// MatchRequest is Match for any Request.
func (t *Table) MatchRequest(r Request) (*Route, Params) {
	authority := r.Authority()
	host, port := splitHostPort(authority)
	vh := t.hosts.find(host)
	if vh == nil {
		return nil, Params{}
	}
	p := Params{Host: host, Port: port, Authority: authority, Path: r.EscapedPath()}
	for i := range vh.matches {
		if vh.matches[i].matches(r, p.Path) {
			return vh.routes[i], p
		}
	}
	return nil, Params{}
}

// netRequest is a net/http request as a Request. Being a single pointer, it converts to the
// interface without allocating.
type netRequest struct{ r *http.Request }

// Method is the request method, GET when unset.
func (n netRequest) Method() string {
	if n.r.Method == "" {
		return http.MethodGet
	}
	return n.r.Method
}

// Authority is the request's Host.
func (n netRequest) Authority() string { return n.r.Host }

// EscapedPath is the escaped path Envoy matches: the request target up to the query, which
// Go keeps in RawPath when it is not the default encoding of Path.
func (n netRequest) EscapedPath() string {
	if n.r.URL == nil {
		return "/"
	}
	if p := n.r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// RawQuery is the URL's query.
func (n netRequest) RawQuery() string {
	if n.r.URL == nil {
		return ""
	}
	return n.r.URL.RawQuery
}

// Header returns a field's values, comma-joined.
func (n netRequest) Header(key string) (string, bool) {
	switch vs := n.r.Header[key]; len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	default:
		return strings.Join(vs, ","), true
	}
}

// TLS reports whether the request came over TLS.
func (n netRequest) TLS() bool { return n.r.TLS != nil }

// routeMatch holds the conditions of one route; all must hold.
type routeMatch struct {
	path    stringMatcher
	headers []headerMatcher
	query   []queryMatcher
}

func (m *routeMatch) matches(r Request, path string) bool {
	if !m.path.matches(path) {
		return false
	}
	for i := range m.headers {
		if !m.headers[i].matches(r) {
			return false
		}
	}
	for i := range m.query {
		if !m.query[i].matches(r.RawQuery()) {
			return false
		}
	}
	return true
}

// compileRouteMatch compiles a route's conditions. Paths are case-sensitive unless
// case_sensitive is false; regexes ignore it, as in Envoy.
func compileRouteMatch(m *routev3.RouteMatch) (routeMatch, error) {
	var out routeMatch
	if err := checkFields(m, "prefix", "path", "safe_regex", "path_separated_prefix",
		"case_sensitive", "headers", "query_parameters"); err != nil {
		return out, err
	}
	fold := m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.path = newStringMatcher(matchPrefix, p.Prefix, fold)
	case *routev3.RouteMatch_Path:
		out.path = newStringMatcher(matchExact, p.Path, fold)
	case *routev3.RouteMatch_PathSeparatedPrefix:
		out.path = newStringMatcher(matchSegmentPrefix, p.PathSeparatedPrefix, fold)
	case *routev3.RouteMatch_SafeRegex:
		var err error
		if out.path, err = regexMatcher(p.SafeRegex); err != nil {
			return out, fmt.Errorf("safe_regex: %w", err)
		}
	default:
		return out, errors.New("no path specifier")
	}
	for i, h := range m.GetHeaders() {
		hm, err := compileHeaderMatcher(h)
		if err != nil {
			return out, fmt.Errorf("headers[%d] (%q): %w", i, h.GetName(), err)
		}
		out.headers = append(out.headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qm, err := compileQueryMatcher(q)
		if err != nil {
			return out, fmt.Errorf("query_parameters[%d] (%q): %w", i, q.GetName(), err)
		}
		out.query = append(out.query, qm)
	}
	return out, nil
}

// matchKind says how a stringMatcher compares.
type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchSuffix
	matchContains
	matchRegex
	// matchSegmentPrefix is path_separated_prefix: the value, then the end or a "/".
	matchSegmentPrefix
)

// stringMatcher is Envoy's StringMatcher, plus whole-segment prefixes for paths. Folding
// is ASCII-only, like Envoy's ignore_case.
type stringMatcher struct {
	kind  matchKind
	value string // lower case when fold; for a regex, the literal prefix of every match
	fold  bool
	re    *regexp.Regexp // full match
}

func newStringMatcher(kind matchKind, value string, fold bool) stringMatcher {
	if fold {
		value = asciiLower(value)
	}
	return stringMatcher{kind: kind, value: value, fold: fold}
}

func (m *stringMatcher) matches(s string) bool {
	switch m.kind {
	case matchExact:
		return len(s) == len(m.value) && hasPrefix(s, m.value, m.fold)
	case matchPrefix:
		return hasPrefix(s, m.value, m.fold)
	case matchSegmentPrefix:
		return hasPrefix(s, m.value, m.fold) && (len(s) == len(m.value) || s[len(m.value)] == '/')
	case matchSuffix:
		return len(s) >= len(m.value) && hasPrefix(s[len(s)-len(m.value):], m.value, m.fold)
	case matchContains:
		for i := 0; i+len(m.value) <= len(s); i++ {
			if hasPrefix(s[i:], m.value, m.fold) {
				return true
			}
		}
		return false
	case matchRegex:
		// The prefix check spares a regex run (and its pooled machine) for most misses.
		return hasPrefix(s, m.value, false) && m.re.MatchString(s)
	}
	return false
}

// hasPrefix reports whether s starts with prefix, which is lower case when fold is set.
func hasPrefix(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if !fold {
		return s[:len(prefix)] == prefix
	}
	for i := 0; i < len(prefix); i++ {
		if lowerByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerByte(c)
	}
	return string(b)
}

func compileStringMatcher(m *matcherv3.StringMatcher) (stringMatcher, error) {
	if err := checkFields(m, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return stringMatcher{}, err
	}
	fold := m.GetIgnoreCase()
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return newStringMatcher(matchExact, p.Exact, fold), nil
	case *matcherv3.StringMatcher_Prefix:
		return newStringMatcher(matchPrefix, p.Prefix, fold), nil
	case *matcherv3.StringMatcher_Suffix:
		return newStringMatcher(matchSuffix, p.Suffix, fold), nil
	case *matcherv3.StringMatcher_Contains:
		return newStringMatcher(matchContains, p.Contains, fold), nil
	case *matcherv3.StringMatcher_SafeRegex:
		sm, err := regexMatcher(p.SafeRegex)
		if err != nil {
			return stringMatcher{}, fmt.Errorf("safe_regex: %w", err)
		}
		return sm, nil
	}
	return stringMatcher{}, errors.New("no match pattern")
}

// regexMatcher compiles an RE2 expression that must match a whole string.
func regexMatcher(m *matcherv3.RegexMatcher) (stringMatcher, error) {
	// google_re2 only names the engine (deprecated, and RE2 is what Go implements).
	if err := checkFields(m, "regex", "google_re2"); err != nil {
		return stringMatcher{}, err
	}
	// Compiled alone first: wrapping could make an invalid expression such as "a)|(b" valid.
	if _, err := regexp.Compile(m.GetRegex()); err != nil {
		return stringMatcher{}, err
	}
	re, err := regexp.Compile(`\A(?:` + m.GetRegex() + `)\z`)
	if err != nil {
		return stringMatcher{}, err
	}
	prefix, _ := re.LiteralPrefix()
	return stringMatcher{kind: matchRegex, value: prefix, re: re}, nil
}

// headerMatcher is Envoy's HeaderMatcher; a header with several values matches as their
// comma-joined value.
type headerMatcher struct {
	header         requestHeader
	present        *bool // present_match, or nil for a value match
	value          stringMatcher
	invert         bool
	missingAsEmpty bool
}

func compileHeaderMatcher(h *routev3.HeaderMatcher) (headerMatcher, error) {
	var out headerMatcher
	if err := checkFields(h, "name", "string_match", "present_match", "invert_match",
		"treat_missing_header_as_empty"); err != nil {
		return out, err
	}
	var err error
	if out.header, err = compileRequestHeader(h.GetName()); err != nil {
		return out, err
	}
	out.invert, out.missingAsEmpty = h.GetInvertMatch(), h.GetTreatMissingHeaderAsEmpty()
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_StringMatch:
		if out.value, err = compileStringMatcher(s.StringMatch); err != nil {
			return out, fmt.Errorf("string_match: %w", err)
		}
	case *routev3.HeaderMatcher_PresentMatch:
		present := s.PresentMatch
		out.present = &present
	default:
		// Envoy: a matcher without a specifier requires the header to be present.
		present := true
		out.present = &present
	}
	return out, nil
}

// matches follows Envoy: a missing header matches only a present_match that asks for its
// absence (or, inverted, for its presence), unless treat_missing_header_as_empty is set.
func (m *headerMatcher) matches(r Request) bool {
	v, ok := m.header.get(r)
	if !ok && !m.missingAsEmpty {
		return m.present != nil && *m.present == m.invert
	}
	var match bool
	if m.present != nil {
		match = *m.present
	} else {
		match = m.value.matches(v)
	}
	return match != m.invert
}

// pseudoHeader names the HTTP/2 pseudo-headers routes can match.
type pseudoHeader uint8

const (
	notPseudo pseudoHeader = iota
	pseudoMethod
	pseudoAuthority
	pseudoScheme
	pseudoPath
)

// requestHeader reads one request header, or a pseudo-header from the request line.
type requestHeader struct {
	key    string // canonical, for a regular header
	pseudo pseudoHeader
}

func compileRequestHeader(name string) (requestHeader, error) {
	switch strings.ToLower(name) {
	case ":method":
		return requestHeader{pseudo: pseudoMethod}, nil
	case ":authority", "host":
		return requestHeader{pseudo: pseudoAuthority}, nil
	case ":scheme":
		return requestHeader{pseudo: pseudoScheme}, nil
	case ":path":
		return requestHeader{pseudo: pseudoPath}, nil
	}
	if strings.HasPrefix(name, ":") {
		return requestHeader{}, fmt.Errorf("pseudo-header %q is not supported", name)
	}
	if !httpguts.ValidHeaderFieldName(name) {
		return requestHeader{}, fmt.Errorf("invalid header name %q", name)
	}
	return requestHeader{key: textproto.CanonicalMIMEHeaderKey(name)}, nil
}

// get returns the header's value, comma-joining several values as Envoy does.
func (h requestHeader) get(r Request) (string, bool) {
	switch h.pseudo {
	case pseudoMethod:
		return r.Method(), true
	case pseudoAuthority:
		host, _ := splitHostPort(r.Authority())
		return host, true
	case pseudoScheme:
		if r.TLS() {
			return "https", true
		}
		return "http", true
	case pseudoPath:
		if q := r.RawQuery(); q != "" {
			return r.EscapedPath() + "?" + q, true
		}
		return r.EscapedPath(), true
	}
	return r.Header(h.key)
}

// queryMatcher is Envoy's QueryParameterMatcher: only the first value of the parameter
// counts, percent-decoded.
type queryMatcher struct {
	name    string
	present *bool // present_match
	value   *stringMatcher
}

func compileQueryMatcher(q *routev3.QueryParameterMatcher) (queryMatcher, error) {
	out := queryMatcher{name: q.GetName()}
	if err := checkFields(q, "name", "string_match", "present_match"); err != nil {
		return out, err
	}
	switch s := q.GetQueryParameterMatchSpecifier().(type) {
	case *routev3.QueryParameterMatcher_StringMatch:
		sm, err := compileStringMatcher(s.StringMatch)
		if err != nil {
			return out, fmt.Errorf("string_match: %w", err)
		}
		out.value = &sm
	case *routev3.QueryParameterMatcher_PresentMatch:
		present := s.PresentMatch
		out.present = &present
	}
	return out, nil
}

// matches follows Envoy: a missing parameter never matches, even present_match: false.
func (m *queryMatcher) matches(rawQuery string) bool {
	v, ok := queryValue(rawQuery, m.name)
	switch {
	case !ok:
		return false
	case m.present != nil:
		return *m.present
	case m.value != nil:
		return m.value.matches(v)
	}
	return true
}

// queryValue returns the first value of the query parameter name, decoding keys and values
// only when they hold escapes.
func queryValue(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if queryUnescape(k) == name {
			return queryUnescape(v), true
		}
	}
	return "", false
}

// queryUnescape decodes %XX and "+"; a malformed escape leaves s as it is.
func queryUnescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
