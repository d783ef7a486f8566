package router

import (
	"errors"
	"fmt"
	"strings"
)

// virtualHost is one compiled virtual host: its routes in match order, with their
// conditions kept apart in a slice of their own, which a match scans without touching the
// routes.
type virtualHost struct {
	name    string
	routes  []*Route
	matches []routeMatch // matches[i] selects routes[i]
}

// hostIndex selects a virtual host as Envoy does: an exact domain, then the longest suffix
// wildcard ("*.example.com", "*-api.example.com"), then the longest prefix wildcard
// ("api.*"), then "*". Domains are stored in lower case; a wildcard stands for one byte or
// more.
type hostIndex struct {
	exact    map[string]*virtualHost
	suffixes wildcards // keyed by what follows the "*"
	prefixes wildcards // keyed by what precedes the "*"
	any      *virtualHost
}

// wildcards indexes the fixed parts of wildcard domains so that a lookup probes the map
// only where a key could start (suffixes) or end (prefixes) with one of the stored lengths:
// for the usual "*.example.com" that is once per label of the host.
type wildcards struct {
	hosts   map[string]*virtualHost
	lengths []bool    // lengths[n]: some key has n bytes
	edge    [256]bool // suffixes: the keys' first bytes; prefixes: their last bytes
}

func (w *wildcards) add(key string, vh *virtualHost, edge byte) {
	if w.hosts == nil {
		w.hosts = make(map[string]*virtualHost)
	}
	w.hosts[key] = vh
	for len(w.lengths) <= len(key) {
		w.lengths = append(w.lengths, false)
	}
	w.lengths[len(key)] = true
	w.edge[edge] = true
}

func (w *wildcards) hasLength(n int) bool { return n < len(w.lengths) && w.lengths[n] }

// add indexes one domain of vh; domains must be unique across the configuration.
func (ix *hostIndex) add(domain string, vh *virtualHost) error {
	// A domain with a port is accepted, as Envoy does, though it never matches: the host
	// looked up has no port (proxyless gRPC configurations carry such domains).
	d := asciiLower(domain)
	if dup := ix.lookupExactDomain(d); dup != nil {
		return fmt.Errorf("domain also belongs to virtual host %q", dup.name)
	}
	switch {
	case d == "*":
		ix.any = vh
	case strings.Count(d, "*") > 1:
		return errors.New("more than one wildcard")
	case strings.HasPrefix(d, "*"):
		ix.suffixes.add(d[1:], vh, d[1])
	case strings.HasSuffix(d, "*"):
		ix.prefixes.add(d[:len(d)-1], vh, d[len(d)-2])
	case strings.Contains(d, "*"):
		return errors.New("a wildcard must start or end the domain")
	default:
		if ix.exact == nil {
			ix.exact = make(map[string]*virtualHost)
		}
		ix.exact[d] = vh
	}
	return nil
}

// lookupExactDomain returns the virtual host that already holds the domain d verbatim.
func (ix *hostIndex) lookupExactDomain(d string) *virtualHost {
	switch {
	case d == "*":
		return ix.any
	case strings.HasPrefix(d, "*"):
		return ix.suffixes.hosts[d[1:]]
	case strings.HasSuffix(d, "*"):
		return ix.prefixes.hosts[d[:len(d)-1]]
	}
	return ix.exact[d]
}

// maxStackHost bounds the hosts lower-cased without allocating.
const maxStackHost = 256

// find selects the virtual host for host, which has no port.
func (ix *hostIndex) find(host string) *virtualHost {
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return ix.findFolded(host)
		}
	}
	return lookup(ix, host)
}

// findFolded lower-cases host on the stack; lookup's map probes with string(b) conversions
// do not allocate.
func (ix *hostIndex) findFolded(host string) *virtualHost {
	if len(host) > maxStackHost {
		return lookup(ix, asciiLower(host))
	}
	var buf [maxStackHost]byte
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		b[i] = lowerByte(host[i])
	}
	return lookup(ix, b)
}

// lookup selects the virtual host for a lower-case host.
func lookup[H string | []byte](ix *hostIndex, host H) *virtualHost {
	if vh, ok := ix.exact[string(host)]; ok {
		return vh
	}
	n := len(host)
	// Longest suffix first; the wildcard covers at least host[0].
	if s := &ix.suffixes; len(s.hosts) > 0 {
		for i := 1; i < n; i++ {
			if s.edge[host[i]] && s.hasLength(n-i) {
				if vh, ok := s.hosts[string(host[i:])]; ok {
					return vh
				}
			}
		}
	}
	// Longest prefix first; the wildcard covers at least the last byte.
	if p := &ix.prefixes; len(p.hosts) > 0 {
		for i := n - 1; i > 0; i-- {
			if p.edge[host[i-1]] && p.hasLength(i) {
				if vh, ok := p.hosts[string(host[:i])]; ok {
					return vh
				}
			}
		}
	}
	return ix.any
}

// splitHostPort splits a Host header as Envoy's strip_any_host_port does: the port is the
// digits after the last colon, unless that colon is inside an IPv6 literal's brackets.
func splitHostPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.LastIndexByte(hostport, ']') > i {
		return hostport, ""
	}
	p := hostport[i+1:]
	if p == "" || len(p) > 10 {
		return hostport, ""
	}
	n := uint64(0)
	for j := 0; j < len(p); j++ {
		if p[j] < '0' || p[j] > '9' {
			return hostport, ""
		}
		n = n*10 + uint64(p[j]-'0')
	}
	if n > 1<<32-1 {
		return hostport, ""
	}
	return hostport[:i], p
}
