package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
	"github.com/strait-gw/strait/provider/kubernetes/kubetest"
	"github.com/strait-gw/strait/translator"
)

func TestMain(m *testing.M) {
	kubetest.DisableWatchList()
	os.Exit(m.Run())
}

// fakeCluster is a member cluster made of fake clientsets.
type fakeCluster struct{ *kubetest.Cluster }

func newFakeCluster(objs ...runtime.Object) *fakeCluster {
	return &fakeCluster{kubetest.NewCluster(objs...)}
}

// waitWatching waits until every informer watches.
func (c *fakeCluster) waitWatching(t *testing.T) {
	t.Helper()
	eventually(t, "the informers to watch", func() bool { return c.Watches() >= len(kinds) })
}

func (c *fakeCluster) clients() *Clients {
	return &Clients{Kube: c.Kube, Gateway: c.Gateway, MCS: c.MCS, Dynamic: c.Dynamic}
}

// fakeClusters maps API server hosts to fake clusters: the provider's NewClients.
type fakeClusters struct {
	mu    sync.Mutex
	hosts map[string]*fakeCluster
}

func (f *fakeClusters) add(host string, c *fakeCluster) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts == nil {
		f.hosts = map[string]*fakeCluster{}
	}
	f.hosts[host] = c
}

func (f *fakeClusters) newClients(cfg *rest.Config) (*Clients, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.hosts[cfg.Host]
	if c == nil {
		return nil, fmt.Errorf("no fake cluster at %s", cfg.Host)
	}
	return c.clients(), nil
}

// probe is a health probe a test can fail, per cluster.
type probe struct {
	mu   sync.Mutex
	down map[kubernetes.Interface]bool
}

func (p *probe) set(c *fakeCluster, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down == nil {
		p.down = map[kubernetes.Interface]bool{}
	}
	p.down[c.Kube] = down
}

func (p *probe) check(_ context.Context, c *Clients) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[c.Kube] {
		return fmt.Errorf("connection refused")
	}
	return nil
}

// testOptions are fast Options for tests.
func testOptions(t *testing.T) Options {
	return Options{
		BindAddress:   "0.0.0.0",
		Debounce:      10 * time.Millisecond,
		ProbeInterval: 20 * time.Millisecond,
		Probe:         func(context.Context, *Clients) error { return nil },
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// start starts p until the test ends and returns its Input channel.
func start(t *testing.T, p *Provider) <-chan *translator.Input {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ch := p.Subscribe()
	go func() { done <- p.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return ch
}

// waitInput reads Inputs until one satisfies ok.
func waitInput(t *testing.T, ch <-chan *translator.Input, what string, ok func(*translator.Input) bool) *translator.Input {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case in, open := <-ch:
			if !open {
				t.Fatalf("channel closed waiting for %s", what)
			}
			if ok(in) {
				return in
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cluster returns the resources of the named cluster in in, or nil.
func cluster(in *translator.Input, name string) *translator.ClusterResources {
	for _, c := range in.Clusters {
		if c.Cluster.Name == name {
			return c
		}
	}
	return nil
}

func names[T metav1.Object](objs []T) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.GetNamespace() + "/" + o.GetName()
	}
	return out
}

// Object builders.

func meta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"}
}

func gatewayClass() *gwapiv1.GatewayClass {
	return &gwapiv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "strait", ResourceVersion: "1"},
		Spec: gwapiv1.GatewayClassSpec{ControllerName: "strait.dev/gateway-controller"}}
}

func gateway(ns, name string, certs ...string) *gwapiv1.Gateway {
	gw := &gwapiv1.Gateway{ObjectMeta: meta(ns, name), Spec: gwapiv1.GatewaySpec{
		GatewayClassName: "strait",
		Listeners:        []gwapiv1.Listener{{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 8080}},
	}}
	if len(certs) > 0 {
		l := gwapiv1.Listener{Name: "https", Protocol: gwapiv1.HTTPSProtocolType, Port: 8443, TLS: &gwapiv1.ListenerTLSConfig{}}
		for _, c := range certs {
			l.TLS.CertificateRefs = append(l.TLS.CertificateRefs, gwapiv1.SecretObjectReference{Name: gwapiv1.ObjectName(c)})
		}
		gw.Spec.Listeners = append(gw.Spec.Listeners, l)
	}
	return gw
}

func httpRoute(ns, name, gw, svc string) *gwapiv1.HTTPRoute {
	port := gwapiv1.PortNumber(80)
	return &gwapiv1.HTTPRoute{ObjectMeta: meta(ns, name), Spec: gwapiv1.HTTPRouteSpec{
		CommonRouteSpec: gwapiv1.CommonRouteSpec{ParentRefs: []gwapiv1.ParentReference{{Name: gwapiv1.ObjectName(gw)}}},
		Rules: []gwapiv1.HTTPRouteRule{{BackendRefs: []gwapiv1.HTTPBackendRef{{BackendRef: gwapiv1.BackendRef{
			BackendObjectReference: gwapiv1.BackendObjectReference{Name: gwapiv1.ObjectName(svc), Port: &port}}}}}},
	}}
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: meta(ns, name), Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Port: 80}}}}
}

func endpointSlice(ns, svc, addr string) *discoveryv1.EndpointSlice {
	m := meta(ns, svc+"-abcde")
	m.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
	port, ready := int32(80), true
	return &discoveryv1.EndpointSlice{ObjectMeta: m, AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:     []discoveryv1.EndpointPort{{Port: &port}}}
}

func secret(ns, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: meta(ns, name), Type: typ, Data: data}
}

func trafficPolicy(ns, name, svc string) *straitv1alpha1.BackendTrafficPolicy {
	return &straitv1alpha1.BackendTrafficPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: straitv1alpha1.SchemeGroupVersion.String(), Kind: straitv1alpha1.BackendTrafficPolicyKind},
		ObjectMeta: meta(ns, name),
		Spec: straitv1alpha1.BackendTrafficPolicySpec{
			TargetRefs:   []gwapiv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwapiv1.LocalPolicyTargetReference{Kind: "Service", Name: gwapiv1.ObjectName(svc)}}},
			LoadBalancer: &straitv1alpha1.LoadBalancer{Type: straitv1alpha1.LoadBalancerLeastRequest},
		}}
}

// mustUnstructured converts a typed object to its unstructured content.
func mustUnstructured(t *testing.T, obj any) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func restConfig(host string) *rest.Config { return &rest.Config{Host: host} }

func toUnstructured(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}
