package kubernetes

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/translator"
)

// ClusterLinkResource is the resource of ClusterLinks.
var ClusterLinkResource = straitv1alpha1.SchemeGroupVersion.WithResource("clusterlinks")

// linkWatcher watches the ClusterLinks of the home namespace and their kubeconfig Secrets.
type linkWatcher struct {
	home    *Home
	links   cache.SharedIndexInformer
	secrets cache.SharedIndexInformer
	cancel  context.CancelFunc
	stopped func()
	// problems says why a link has no cluster (or keeps its old one): a Ready condition.
	problems map[string]metav1.Condition
}

func (p *Provider) watchLinks(ctx context.Context) (*linkWatcher, error) {
	home := p.opts.Home
	ctx, cancel := context.WithCancel(ctx)
	dyn := dynamicinformer.NewFilteredDynamicSharedInformerFactory(home.Dynamic, 0, home.Namespace, nil)
	kube := informers.NewSharedInformerFactoryWithOptions(home.Kube, 0, informers.WithNamespace(home.Namespace))
	w := &linkWatcher{
		home:     home,
		links:    dyn.ForResource(ClusterLinkResource).Informer(),
		secrets:  kube.Core().V1().Secrets().Informer(),
		cancel:   cancel,
		problems: map[string]metav1.Condition{},
	}
	changed := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.signal(p.linksChanged) },
		UpdateFunc: func(any, any) { p.signal(p.linksChanged) },
		DeleteFunc: func(any) { p.signal(p.linksChanged) },
	}
	for _, inf := range []cache.SharedIndexInformer{w.links, w.secrets} {
		if _, err := inf.AddEventHandler(changed); err != nil {
			cancel()
			return nil, fmt.Errorf("watch ClusterLinks: %w", err)
		}
	}
	dyn.Start(ctx.Done())
	kube.Start(ctx.Done())
	w.stopped = func() {
		dyn.Shutdown()
		kube.Shutdown()
	}
	return w, nil
}

func (w *linkWatcher) synced() bool { return w.links.HasSynced() && w.secrets.HasSynced() }

func (w *linkWatcher) stop() {
	w.cancel()
	w.stopped()
}

// clusterLinks returns the ClusterLinks in the cache, each with its unstructured original.
func (w *linkWatcher) clusterLinks() map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range w.links.GetStore().List() {
		if u, ok := o.(*unstructured.Unstructured); ok {
			out[u.GetName()] = u
		}
	}
	return out
}

func toClusterLink(u *unstructured.Unstructured) (*straitv1alpha1.ClusterLink, error) {
	link := &straitv1alpha1.ClusterLink{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, link); err != nil {
		return nil, fmt.Errorf("ClusterLink %s: %w", u.GetName(), err)
	}
	return link, nil
}

// kubeconfig returns the kubeconfig the link's Secret holds.
func (w *linkWatcher) kubeconfig(link *straitv1alpha1.ClusterLink) ([]byte, error) {
	ref := link.Spec.KubeconfigSecretRef
	key := ref.Key
	if key == "" {
		key = straitv1alpha1.DefaultKubeconfigKey
	}
	o, ok, err := w.secrets.GetStore().GetByKey(w.home.Namespace + "/" + ref.Name)
	if err != nil || !ok {
		return nil, fmt.Errorf("kubeconfig Secret %s/%s not found", w.home.Namespace, ref.Name)
	}
	data := o.(*corev1.Secret).Data[key]
	if len(data) == 0 {
		return nil, fmt.Errorf("kubeconfig Secret %s/%s has no key %s", w.home.Namespace, ref.Name, key)
	}
	return data, nil
}

// reconcileLinks makes the link-made members match the ClusterLinks: a new link starts a
// cluster, a changed kubeconfig rebuilds it, changed metadata is republished, and a removed
// link stops it. A link whose kubeconfig is missing or unusable keeps the cluster it had.
func (p *Provider) reconcileLinks(ctx context.Context) {
	w := p.links
	links := w.clusterLinks()
	for name, u := range links {
		link, err := toClusterLink(u)
		if err != nil {
			w.problems[name] = readyFalse(straitv1alpha1.ClusterLinkReasonInvalidKubeconfig, err.Error())
			continue
		}
		if p.static[name] {
			w.problems[name] = readyFalse(straitv1alpha1.ClusterLinkReasonNameInUse,
				"a cluster of this name is given by a --kubeconfig flag or the config file")
			continue
		}
		cluster := translator.Cluster{Name: name, Region: link.Spec.Region, Zone: link.Spec.Zone,
			Network: link.Spec.Network, Labels: link.Spec.Labels}
		data, err := w.kubeconfig(link)
		if err != nil {
			w.problems[name] = readyFalse(straitv1alpha1.ClusterLinkReasonInvalidKubeconfig, err.Error())
			continue
		}
		if err := p.applyLink(ctx, cluster, data); err != nil {
			w.problems[name] = readyFalse(straitv1alpha1.ClusterLinkReasonInvalidKubeconfig, err.Error())
			continue
		}
		delete(w.problems, name)
	}
	for name, m := range p.members {
		if m.link && links[name] == nil {
			p.log.Info("ClusterLink removed; stopping its cluster", "cluster", name)
			p.remove(name)
		}
	}
	for name := range w.problems {
		if links[name] == nil {
			delete(w.problems, name)
		}
	}
}

// applyLink starts, rebuilds or updates the cluster of one ClusterLink.
func (p *Provider) applyLink(ctx context.Context, cluster translator.Cluster, kubeconfig []byte) error {
	sum := sha256.Sum256(kubeconfig)
	m := p.members[cluster.Name]
	if m != nil && (m.credentials == sum || (m.next != nil && m.next.credentials == sum)) {
		if !sameCluster(m.cluster, cluster) {
			m.cluster = cluster
			if m.next != nil {
				m.next.cluster = cluster
			}
			p.registry.set(&Member{Cluster: cluster, Clients: m.clients})
			p.notify()
		}
		return nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	clients, err := p.opts.NewClients(cfg)
	if err != nil {
		return err
	}
	next := p.newMember(cluster, clients)
	next.link, next.credentials = true, sum
	if m == nil {
		p.log.Info("ClusterLink added; starting its cluster", "cluster", cluster.Name)
		p.add(ctx, next)
		return nil
	}
	// Credentials rotated: the old informers keep serving until the new ones have synced.
	p.log.Info("ClusterLink credentials changed; rebuilding its cluster", "cluster", cluster.Name)
	if m.next != nil {
		m.next.stop()
	}
	m.next = next
	m.cluster = cluster
	next.start(ctx)
	return nil
}

func sameCluster(a, b translator.Cluster) bool {
	return a.Name == b.Name && a.Region == b.Region && a.Zone == b.Zone && a.Network == b.Network &&
		maps.Equal(a.Labels, b.Labels)
}

func readyFalse(reason, message string) metav1.Condition {
	return metav1.Condition{Type: straitv1alpha1.ClusterLinkConditionReady, Status: metav1.ConditionFalse,
		Reason: reason, Message: message}
}

// linkCondition is the Ready condition a ClusterLink should have.
func (p *Provider) linkCondition(name string) metav1.Condition {
	if c, ok := p.links.problems[name]; ok {
		return c
	}
	m := p.members[name]
	switch {
	case m == nil || !m.synced():
		return readyFalse(straitv1alpha1.ClusterLinkReasonSyncing, "connecting to the API server and syncing its resources")
	case m.stale.Load():
		msg := "the API server does not answer; serving its last known resources"
		if e := m.lastErr.Load(); e != nil {
			msg += ": " + *e
		}
		return readyFalse(straitv1alpha1.ClusterLinkReasonUnreachable, msg)
	}
	return metav1.Condition{Type: straitv1alpha1.ClusterLinkConditionReady, Status: metav1.ConditionTrue,
		Reason: straitv1alpha1.ClusterLinkReasonSynced, Message: "connected and synced"}
}

// writeLinkStatuses sets each ClusterLink's Ready condition where it differs. Only the
// leader writes; a new leader catches up at its next call.
func (p *Provider) writeLinkStatuses(ctx context.Context) {
	if p.links == nil || !p.links.synced() || !p.opts.IsLeader() {
		return
	}
	for name, u := range p.links.clusterLinks() {
		link, err := toClusterLink(u)
		if err != nil {
			continue
		}
		want := p.linkCondition(name)
		want.ObservedGeneration = link.Generation
		have := apimeta.FindStatusCondition(link.Status.Conditions, want.Type)
		if have != nil && have.Status == want.Status && have.Reason == want.Reason &&
			have.Message == want.Message && have.ObservedGeneration == want.ObservedGeneration {
			continue
		}
		apimeta.SetStatusCondition(&link.Status.Conditions, want)
		if err := p.updateLinkStatus(ctx, link); err != nil {
			// The next tick retries, with the cache's newer copy after a conflict.
			p.log.Warn("cannot update ClusterLink status", "clusterLink", name, "error", err)
		}
	}
}

func (p *Provider) updateLinkStatus(ctx context.Context, link *straitv1alpha1.ClusterLink) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(link)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(straitv1alpha1.SchemeGroupVersion.String())
	u.SetKind(straitv1alpha1.ClusterLinkKind)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = p.opts.Home.Dynamic.Resource(ClusterLinkResource).Namespace(link.Namespace).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	return err
}
