package translator

import (
	"fmt"
	"sort"

	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator/ir"
)

// buildProxy assembles the IR of one Gateway from its programmed listeners and what attached
// to them. It returns nil for a Gateway that is not accepted: one whose addresses are not
// usable, or that has no valid listener.
func (t *translation) buildProxy(gw *gateway) *ir.Proxy {
	if gw.addresses == nil {
		return nil
	}
	p := &ir.Proxy{Node: gw.node, Cluster: gw.cluster}
	byPort := map[gwapiv1.PortNumber][]*listener{}
	var ports []gwapiv1.PortNumber
	for _, l := range gw.listeners {
		if !l.ok {
			continue
		}
		if byPort[l.spec.Port] == nil {
			ports = append(ports, l.spec.Port)
		}
		byPort[l.spec.Port] = append(byPort[l.spec.Port], l)
	}
	if len(ports) == 0 {
		return nil
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
	for _, port := range ports {
		ls := byPort[port]
		protocol, chains := t.portChains(gw, port, ls)
		if len(chains) == 0 {
			continue
		}
		for _, addr := range gw.addresses {
			p.Listeners = append(p.Listeners, &ir.Listener{
				Name:     fmt.Sprintf("%s:%d", addr, port),
				Address:  addr,
				Port:     uint32(port),
				Protocol: protocol,
				Chains:   chains,
			})
		}
	}
	p.Backends = t.proxyBackends(p)
	return p
}

// portChains builds the filter chains of one port from the listeners that share it (markConflicts
// made sure they are of one protocol family).
func (t *translation) portChains(gw *gateway, port gwapiv1.PortNumber, ls []*listener) (ir.Protocol, []*ir.FilterChain) {
	prefix := gw.key.Namespace + "/" + gw.key.Name + "/"
	switch ls[0].spec.Protocol {
	case gwapiv1.HTTPProtocolType:
		name := fmt.Sprintf("%shttp-%d", prefix, port)
		return ir.ProtocolHTTP, []*ir.FilterChain{{Name: name, HTTP: routeTable(name, ls, ls)}}
	case gwapiv1.TCPProtocolType:
		chain := &ir.FilterChain{Name: prefix + string(ls[0].spec.Name), TCP: oldestForward(ls[0].l4)}
		if chain.TCP == nil {
			return ir.ProtocolTCP, nil
		}
		return ir.ProtocolTCP, []*ir.FilterChain{chain}
	}
	// HTTPS and TLS passthrough share the port, told apart by SNI. Each SNI name goes to the
	// listener whose hostname matches it most specifically.
	protocol := ir.ProtocolHTTPS
	bySNI := map[string]*ir.FilterChain{}
	owner := map[string]*listener{}
	claim := func(sni string, l *listener, chain *ir.FilterChain) {
		if prev := owner[sni]; prev != nil && !moreSpecific(l.hostname(), prev.hostname(), sni) {
			return
		}
		owner[sni], bySNI[sni] = l, chain
	}
	for _, l := range ls {
		name := prefix + string(l.spec.Name)
		if l.spec.Protocol == gwapiv1.HTTPSProtocolType {
			chain := &ir.FilterChain{Name: name, TLS: &ir.TLSTermination{Certificates: l.certs}, HTTP: routeTable(name, []*listener{l}, ls)}
			claim(l.hostname(), l, chain)
			continue
		}
		protocol = ir.ProtocolTLS
		for sni, fwd := range forwardsBySNI(l.l4) {
			claim(sni, l, &ir.FilterChain{Name: name, TCP: fwd})
		}
	}
	snis := make([]string, 0, len(bySNI))
	for sni := range bySNI {
		snis = append(snis, sni)
	}
	// Most specific first; the catch-all ("") last.
	sort.Slice(snis, func(i, j int) bool { return sniBefore(snis[i], snis[j]) })
	chains := make([]*ir.FilterChain, 0, len(snis))
	for _, sni := range snis {
		chain := *bySNI[sni]
		if sni != "" {
			chain.ServerNames = []string{sni}
		}
		chains = append(chains, &chain)
	}
	return protocol, chains
}

// routeTable builds the virtual hosts of the routes attached to ls. all is every listener on
// the port: a host name belongs to the listener that matches it most specifically, so routes
// of a wildcard listener never serve a host that a more specific listener owns.
func routeTable(name string, ls, all []*listener) *ir.RouteTable {
	byHost := map[string][]*rankedRoute{}
	owner := map[string]*listener{}
	seen := map[string]map[string]bool{}
	for _, l := range ls {
		for _, a := range l.http {
			for _, host := range a.hostnames {
				if ownerOf(host, all) != l {
					continue
				}
				if seen[host] == nil {
					seen[host] = map[string]bool{}
					owner[host] = l
				}
				for _, r := range a.routes {
					// A route attached through two parentRefs is still one route.
					if !seen[host][r.route.Name] {
						seen[host][r.route.Name] = true
						byHost[host] = append(byHost[host], r)
					}
				}
			}
		}
	}
	rt := &ir.RouteTable{Name: name}
	hosts := make([]string, 0, len(byHost))
	for h, ranked := range byHost {
		hosts = append(hosts, h)
		sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].before(ranked[j]) })
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		// The spec gives the routes of a more specific hostname precedence, not exclusivity:
		// a request for h also matches the routes of the listener's wider names that cover
		// h ("*.example.com", "*"), after those of h and most specific first.
		vh := &ir.VirtualHost{Name: h, Domains: []string{h}}
		for _, r := range byHost[h] {
			vh.Routes = append(vh.Routes, r.route)
		}
		for _, w := range widerHosts(h) {
			if owner[w] != owner[h] {
				continue
			}
			for _, r := range byHost[w] {
				if !seen[h][r.route.Name] {
					seen[h][r.route.Name] = true
					vh.Routes = append(vh.Routes, r.route)
				}
			}
		}
		rt.VirtualHosts = append(rt.VirtualHosts, vh)
	}
	return rt
}

// widerHosts returns the wildcard names that cover host, most specific first: for
// "a.b.example.com" they are "*.b.example.com", "*.example.com", "*.com" and "*". Looking
// them up keeps a table linear in its hosts.
func widerHosts(host string) []string {
	var out []string
	for i := 1; i < len(host); i++ {
		if host[i] == '.' && "*"+host[i:] != host {
			out = append(out, "*"+host[i:])
		}
	}
	if host != "*" {
		out = append(out, "*")
	}
	return out
}

// ownerOf returns the listener whose hostname matches host most specifically.
func ownerOf(host string, ls []*listener) *listener {
	var best *listener
	for _, l := range ls {
		lh := l.hostname()
		if lh != "" && !hostCovers(lh, host) {
			continue
		}
		if host == "*" && lh != "" {
			continue
		}
		if best == nil || moreSpecific(lh, best.hostname(), host) {
			best = l
		}
	}
	return best
}

// moreSpecific reports whether listener hostname a matches host more specifically than b:
// an exact name beats a wildcard, a longer wildcard beats a shorter one, and any name beats
// none.
func moreSpecific(a, b, host string) bool {
	rank := func(h string) int {
		switch h {
		case "":
			return 0
		case host:
			return 1 << 30
		}
		return len(h)
	}
	return rank(a) > rank(b)
}

// sniBefore orders SNI names for filter chains: exact names, then wildcards by length, then
// the catch-all.
func sniBefore(a, b string) bool {
	wa, wb := a == "" || a[0] == '*', b == "" || b[0] == '*'
	if wa != wb {
		return !wa
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a < b
}

// forwardsBySNI picks, for every SNI name of a TLS passthrough listener, the oldest route.
// "*" (a listener and route without hostnames) becomes the catch-all "".
func forwardsBySNI(as []*l4Attachment) map[string]*ir.TCPForward {
	sort.SliceStable(as, func(i, j int) bool { return l4Before(as[i], as[j]) })
	out := map[string]*ir.TCPForward{}
	for _, a := range as {
		for _, h := range a.hostnames {
			if h == "*" {
				h = ""
			}
			if out[h] == nil {
				out[h] = a.forward
			}
		}
	}
	return out
}

func oldestForward(as []*l4Attachment) *ir.TCPForward {
	if len(as) == 0 {
		return nil
	}
	sort.SliceStable(as, func(i, j int) bool { return l4Before(as[i], as[j]) })
	return as[0].forward
}

func l4Before(a, b *l4Attachment) bool {
	if a.age != b.age {
		return a.age < b.age
	}
	return a.object < b.object
}

// proxyBackends returns the backends that the proxy's routes and forwards refer to.
func (t *translation) proxyBackends(p *ir.Proxy) []*ir.Backend {
	names := map[string]bool{}
	add := func(wbs []*ir.WeightedBackend) {
		for _, wb := range wbs {
			if wb.Backend != "" {
				names[wb.Backend] = true
			}
		}
	}
	for _, l := range p.Listeners {
		for _, c := range l.Chains {
			if c.TCP != nil {
				add(c.TCP.Backends)
			}
			if c.HTTP == nil {
				continue
			}
			for _, vh := range c.HTTP.VirtualHosts {
				for _, r := range vh.Routes {
					add(r.Backends)
					for _, m := range r.Mirrors {
						names[m.Backend] = true
					}
				}
			}
		}
	}
	out := make([]*ir.Backend, 0, len(names))
	for name := range names {
		out = append(out, t.backends[backendKey{from: p.Cluster, name: name}])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
