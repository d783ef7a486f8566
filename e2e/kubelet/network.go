package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// maxBridgeName keeps "<bridge>-<octet>" within the kernel's 15-byte interface name limit.
const maxBridgeName = 11

// network is one cluster's pod network on the host: a Linux bridge holding the pod CIDR's
// first address, and per pod a network namespace joined to the bridge by a veth pair.
// Every name it creates starts with the bridge's name, so a crashed run's leftovers can be
// found and removed.
type network struct {
	bridge  string
	cidr    netip.Prefix
	gateway netip.Addr // the bridge's address, the pods' default route and the node's IP

	mu   sync.Mutex
	used map[netip.Addr]bool
}

// podSandbox is a pod's network namespace and address.
type podSandbox struct {
	name string // netns name, also the host end of the veth pair
	ip   netip.Addr
}

// netnsPath is where `ip netns` keeps a namespace, the path nsenter --net takes.
func (s podSandbox) netnsPath() string { return filepath.Join("/run/netns", s.name) }

func newNetwork(bridge string, cidr netip.Prefix) (*network, error) {
	if bridge == "" || len(bridge) > maxBridgeName {
		return nil, fmt.Errorf("bridge name %q: want 1 to %d characters", bridge, maxBridgeName)
	}
	// At most 254 pods, so that a pod's last octet names it uniquely.
	if !cidr.Addr().Is4() || cidr.Bits() < 24 || cidr.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s: want an IPv4 prefix from /24 to /30", cidr)
	}
	cidr = cidr.Masked()
	return &network{bridge: bridge, cidr: cidr, gateway: cidr.Addr().Next(), used: map[netip.Addr]bool{}}, nil
}

// setUp removes what a previous run with the same bridge left behind, then creates the
// bridge with the gateway address. Forwarding is turned on for the bridge alone (not the
// host's ip_forward): IPv4 checks it on the interface a packet comes in by, so pods reach
// other clusters' bridges through the host while nothing arriving on eth0 is forwarded.
//
// The bridge's MAC address is set explicitly, to the random one it was created with: a
// bridge whose address was never set takes the lowest of its ports' addresses, so adding or
// removing a pod would change the pods' gateway address under them (their cached one goes
// nowhere for up to a minute, until their ARP entry expires) and flush the host's ARP
// entries for the bridge. CNI's bridge plugin pins it for the same reason.
func (n *network) setUp(ctx context.Context) error {
	n.cleanStale(ctx)
	if err := ip(ctx, "link", "add", "name", n.bridge, "type", "bridge"); err != nil {
		return fmt.Errorf("bridge %s: %w", n.bridge, err)
	}
	mac, err := os.ReadFile(filepath.Join("/sys/class/net", n.bridge, "address"))
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.bridge, err)
	}
	steps := [][]string{
		{"link", "set", n.bridge, "address", strings.TrimSpace(string(mac))},
		{"addr", "add", netip.PrefixFrom(n.gateway, n.cidr.Bits()).String(), "dev", n.bridge},
		{"link", "set", n.bridge, "up"},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return fmt.Errorf("bridge %s: %w", n.bridge, err)
		}
	}
	fwd := filepath.Join("/proc/sys/net/ipv4/conf", n.bridge, "forwarding")
	if err := os.WriteFile(fwd, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("bridge %s: enable forwarding: %w", n.bridge, err)
	}
	return nil
}

// tearDown removes every namespace, veth and the bridge this network owns.
func (n *network) tearDown(ctx context.Context) error {
	n.cleanStale(ctx)
	if linkExists(n.bridge) {
		if err := ip(ctx, "link", "del", n.bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.bridge, err)
		}
	}
	return nil
}

// cleanStale deletes the namespaces and veths named after this bridge, and the bridge.
func (n *network) cleanStale(ctx context.Context) {
	prefix := n.bridge + "-"
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = ip(ctx, "netns", "del", e.Name())
			}
		}
	}
	if entries, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				_ = ip(ctx, "link", "del", e.Name())
			}
		}
	}
	if linkExists(n.bridge) {
		_ = ip(ctx, "link", "del", n.bridge)
	}
}

// allocate reserves the lowest free pod address.
func (n *network) allocate() (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// Stop before the broadcast address, the CIDR's last.
	for a := n.gateway.Next(); n.cidr.Contains(a.Next()); a = a.Next() {
		if !n.used[a] {
			n.used[a] = true
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("pod CIDR %s is full", n.cidr)
}

func (n *network) release(a netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.used, a)
}

// addPod creates a pod's namespace with eth0 holding a fresh address, lo up and a
// default route via the bridge.
func (n *network) addPod(ctx context.Context) (podSandbox, error) {
	addr, err := n.allocate()
	if err != nil {
		return podSandbox{}, err
	}
	sb := podSandbox{name: fmt.Sprintf("%s-%d", n.bridge, addr.As4()[3]), ip: addr}
	steps := [][]string{
		{"netns", "add", sb.name},
		{"link", "add", sb.name, "type", "veth", "peer", "name", "eth0", "netns", sb.name},
		{"link", "set", sb.name, "master", n.bridge, "up"},
		{"-n", sb.name, "addr", "add", netip.PrefixFrom(addr, n.cidr.Bits()).String(), "dev", "eth0"},
		{"-n", sb.name, "link", "set", "lo", "up"},
		{"-n", sb.name, "link", "set", "eth0", "up"},
		{"-n", sb.name, "route", "add", "default", "via", n.gateway.String()},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			n.removePod(ctx, sb)
			return podSandbox{}, fmt.Errorf("pod network %s: %w", sb.name, err)
		}
	}
	return sb, nil
}

// removePod deletes a pod's namespace (which takes its eth0 and so the veth pair with it)
// and frees its address, with the host's ARP entry for it: the next pod to get the address
// has another MAC, and a stale entry would send the host's packets for it (the readiness
// probes, the proxies' requests) to the old one until the entry expires, from 8 to about 50
// seconds later.
func (n *network) removePod(ctx context.Context, sb podSandbox) {
	if _, err := os.Stat(sb.netnsPath()); err == nil {
		_ = ip(ctx, "netns", "del", sb.name)
	}
	if linkExists(sb.name) {
		_ = ip(ctx, "link", "del", sb.name)
	}
	_ = ip(ctx, "neigh", "flush", "to", sb.ip.String(), "dev", n.bridge)
	n.release(sb.ip)
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// ip runs iproute2's ip with args.
func ip(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("ip %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
		}
		return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
