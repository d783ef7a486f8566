package kubelet

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"k8s.io/client-go/kubernetes"

	"github.com/strait-gw/strait/e2e/localcluster"
)

// Addon is a localcluster.Addon that runs a process kubelet in each cluster: node
// "<cluster>-node", bridge "strait<index>", the cluster's PodCIDR, and CLUSTER=<cluster>
// in every process. onStart, when not nil, gets each kubelet once it runs; it is called
// concurrently for different clusters. readyImages are its Options.ReadyImages. localcluster never imports this package, so the
// dependency stays one way.
func Addon(onStart func(c *localcluster.Cluster, k *Kubelet), readyImages ...string) localcluster.Addon {
	return func(ctx context.Context, c *localcluster.Cluster) (func() error, error) {
		client, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			return nil, fmt.Errorf("kubelet: %w", err)
		}
		cidr, err := netip.ParsePrefix(c.PodCIDR)
		if err != nil {
			return nil, fmt.Errorf("kubelet: %w", err)
		}
		k, err := Start(ctx, Options{
			Client:      client,
			NodeName:    c.Name + "-node",
			PodCIDR:     cidr,
			Bridge:      "strait" + strconv.Itoa(c.Index),
			Cluster:     c.Name,
			ReadyImages: readyImages,
		})
		if err != nil {
			return nil, err
		}
		if onStart != nil {
			onStart(c, k)
		}
		return func() error { return k.Stop(context.Background()) }, nil
	}
}

// Bridge is the name of the kubelet's bridge; its pods' namespaces and host veths are
// named after it.
func (k *Kubelet) Bridge() string { return k.net.bridge }

// PodCIDR is the kubelet's pod network.
func (k *Kubelet) PodCIDR() netip.Prefix { return k.net.cidr }
