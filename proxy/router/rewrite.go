package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// RewriteRequest prepares r for forwarding on the route: the Host becomes HostRewrite, or
// else stays the one the client sent, port included, and the path is rewritten by the route's prefix_rewrite or regex_rewrite,
// keeping the query string. p is what Match returned for r.
func (rt *Route) RewriteRequest(r *http.Request, p Params) {
	r.Host = rt.ForwardedHost(p)
	if path, ok := rt.RewrittenPath(p); ok && r.URL != nil {
		setEscapedPath(r.URL, path)
	}
}

// ForwardedHost is the Host forwarded upstream: HostRewrite, or else the Host the client
// sent, port included (conformance test HTTPRouteHostnameIntersection).
func (rt *Route) ForwardedHost(p Params) string {
	if rt.HostRewrite != "" {
		return rt.HostRewrite
	}
	return p.Authority
}

// RewrittenPath returns the escaped path forwarded upstream when the route rewrites it; ok
// is false when it forwards the request's own.
func (rt *Route) RewrittenPath(p Params) (path string, ok bool) {
	if rt.rewrite.kind == rewriteNone {
		return "", false
	}
	return rt.rewrite.apply(p.Path), true
}

// setEscapedPath sets u's path from its escaped form, so that the forwarded request target
// is exactly the rewritten one.
func setEscapedPath(u *url.URL, escaped string) {
	path, err := url.PathUnescape(escaped)
	if err != nil {
		// A malformed escape (from a rewrite's literal) is forwarded as it is written.
		path = escaped
	}
	u.Path, u.RawPath = path, escaped
}

// rewriteKind says how a pathRewrite changes a path.
type rewriteKind uint8

const (
	rewriteNone rewriteKind = iota
	// rewritePrefix replaces the part of the path the route matched (prefix_rewrite).
	rewritePrefix
	// rewriteRegex replaces every match of a regex (regex_rewrite).
	rewriteRegex
)

// pathRewrite is Envoy's prefix_rewrite or regex_rewrite, for forwarding or for redirects.
// Either applies to the path only; the query string is kept apart.
type pathRewrite struct {
	kind rewriteKind
	// matched is how many bytes of the path the route's prefix or path match covers; -1
	// for a regex match, whose prefix_rewrite replaces the whole path.
	matched  int
	value    string // rewritePrefix's replacement
	re       *regexp.Regexp
	template string // rewriteRegex's substitution, in regexp.Expand syntax
}

func (p *pathRewrite) apply(path string) string {
	switch p.kind {
	case rewritePrefix:
		n := p.matched
		if n < 0 || n > len(path) {
			n = len(path)
		}
		return p.value + path[n:]
	case rewriteRegex:
		return p.re.ReplaceAllString(path, p.template)
	}
	return path
}

// compilePrefixRewrite replaces what the route's path match covered with value.
func compilePrefixRewrite(value string, m *routeMatch) pathRewrite {
	out := pathRewrite{kind: rewritePrefix, value: value, matched: -1}
	if m.path.kind != matchRegex {
		out.matched = len(m.path.value)
	}
	return out
}

// compileRegexRewrite compiles regex_rewrite: every non-overlapping match of the pattern in
// the path is replaced by the substitution, as RE2's GlobalReplace does.
func compileRegexRewrite(m *matcherv3.RegexMatchAndSubstitute) (pathRewrite, error) {
	if err := checkFields(m, "pattern", "substitution"); err != nil {
		return pathRewrite{}, err
	}
	if err := checkFields(m.GetPattern(), "regex", "google_re2"); err != nil {
		return pathRewrite{}, fmt.Errorf("pattern: %w", err)
	}
	re, err := regexp.Compile(m.GetPattern().GetRegex())
	if err != nil {
		return pathRewrite{}, fmt.Errorf("pattern: %w", err)
	}
	template, err := re2Substitution(m.GetSubstitution(), re.NumSubexp())
	if err != nil {
		return pathRewrite{}, fmt.Errorf("substitution: %w", err)
	}
	return pathRewrite{kind: rewriteRegex, re: re, template: template}, nil
}

// re2Substitution translates an RE2 rewrite string ("\1" for a group, "\\" for a
// backslash) into regexp.Expand's syntax ("${1}", with "$" written "$$").
func re2Substitution(sub string, groups int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c != '\\':
			b.WriteByte(c)
		case i+1 == len(sub):
			return "", errors.New("ends with a lone backslash")
		case sub[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case sub[i+1] >= '0' && sub[i+1] <= '9':
			n := int(sub[i+1] - '0')
			if n > groups {
				return "", fmt.Errorf(`\%d refers to a group the pattern does not have`, n)
			}
			fmt.Fprintf(&b, "${%d}", n)
			i++
		default:
			return "", fmt.Errorf(`invalid escape \%c`, sub[i+1])
		}
	}
	return b.String(), nil
}
