package translator_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/translator"
)

// benchInput builds three clusters (two in one region) with one Gateway each and routes
// HTTPRoutes spread over them, each with its own hostname and a 90/10 split between its own
// Service and another cluster's through a mirror Service. Every Service is exported and has
// three endpoints.
func benchInput(routes int) *translator.Input {
	clusters := []translator.Cluster{
		{Name: "ap", Region: "ap-south", Network: "n"},
		{Name: "eu", Region: "eu-west", Network: "n"},
		{Name: "us", Region: "eu-west", Network: "n"},
	}
	in := &translator.Input{BindAddress: "127.0.0.1"}
	for ci, c := range clusters {
		cr := &translator.ClusterResources{Cluster: c}
		cr.GatewayClasses = []*gwapiv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "strait"},
			Spec:       gwapiv1.GatewayClassSpec{ControllerName: translator.ControllerName},
		}}
		cr.Gateways = []*gwapiv1.Gateway{{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: gwapiv1.GatewaySpec{GatewayClassName: "strait", Listeners: []gwapiv1.Listener{
				{Name: "http", Protocol: gwapiv1.HTTPProtocolType, Port: 8080},
			}},
		}}
		other := clusters[(ci+1)%len(clusters)].Name
		for i := ci; i < routes; i += len(clusters) {
			svc := fmt.Sprintf("svc-%d", i/len(clusters)%500)
			cr.HTTPRoutes = append(cr.HTTPRoutes, &gwapiv1.HTTPRoute{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("route-%d", i), Namespace: "default"},
				Spec: gwapiv1.HTTPRouteSpec{
					CommonRouteSpec: gwapiv1.CommonRouteSpec{ParentRefs: []gwapiv1.ParentReference{{Name: "web"}}},
					Hostnames:       []gwapiv1.Hostname{gwapiv1.Hostname(fmt.Sprintf("r%d.example.com", i))},
					Rules: []gwapiv1.HTTPRouteRule{{
						Matches: []gwapiv1.HTTPRouteMatch{{Path: &gwapiv1.HTTPPathMatch{Type: ptr.To(gwapiv1.PathMatchPathPrefix), Value: ptr.To("/api")}}},
						BackendRefs: []gwapiv1.HTTPBackendRef{
							{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: gwapiv1.ObjectName(svc), Port: ptr.To[int32](80)}, Weight: ptr.To[int32](90)}},
							{BackendRef: gwapiv1.BackendRef{BackendObjectReference: gwapiv1.BackendObjectReference{Name: gwapiv1.ObjectName(svc + "-" + other), Port: ptr.To[int32](80)}, Weight: ptr.To[int32](10)}},
						},
					}},
				},
			})
		}
		for s := range 500 {
			name := fmt.Sprintf("svc-%d", s)
			cr.Services = append(cr.Services, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{translator.ExportLabel: "true"}},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
			})
			cr.EndpointSlices = append(cr.EndpointSlices, endpointSlice(name, ci, s, 0))
		}
		in.Clusters = append(in.Clusters, cr)
	}
	return in
}

func endpointSlice(svc string, cluster, s, generation int) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-abc", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
	}
	for e := range 3 {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", cluster, s%250, e+1+generation)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		})
	}
	return es
}

// BenchmarkTranslate translates 10,000 HTTPRoutes across three clusters.
func BenchmarkTranslate(b *testing.B) {
	in := benchInput(10000)
	b.ReportAllocs()
	for b.Loop() {
		out := translator.Translate(in)
		if len(out.Proxies) != 3 {
			b.Fatalf("got %d proxies", len(out.Proxies))
		}
	}
}

// BenchmarkEndpointUpdate is the endpoint fast path at the same size: one Service's
// EndpointSlice changes, the change is recognized as endpoints-only, and every proxy gets
// fresh endpoints without a full translation.
func BenchmarkEndpointUpdate(b *testing.B) {
	in := benchInput(10000)
	out := translator.Translate(in)
	b.ReportAllocs()
	gen := 0
	for b.Loop() {
		gen++
		next := *in
		next.Clusters = append([]*translator.ClusterResources(nil), in.Clusters...)
		cr := *next.Clusters[0]
		cr.EndpointSlices = append([]*discoveryv1.EndpointSlice(nil), cr.EndpointSlices...)
		cr.EndpointSlices[7] = endpointSlice("svc-7", 0, 7, gen%2)
		next.Clusters[0] = &cr
		if !translator.SameExceptEndpoints(in, &next) {
			b.Fatal("an EndpointSlice change should be endpoints-only")
		}
		if got := translator.RefreshEndpoints(&next, out.Proxies); len(got) != 3 {
			b.Fatalf("got %d proxies", len(got))
		}
	}
}
