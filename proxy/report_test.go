package proxy_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/proxy"
	"github.com/strait-gw/strait/translator"
)

// TestProxyReportsProgrammed checks what a proxy tells its control plane and what becomes of
// it in the Gateway's status: the proxy advertises its address and accepts its listeners, so
// the Gateway is Programmed with that address; then the Gateway names an address this host
// does not have (192.0.2.1, TEST-NET-1), the proxy cannot bind it and says so, and the Gateway
// is not Programmed, for AddressNotUsable. Binding fails locally; no packet is sent.
func TestProxyReportsProgrammed(t *testing.T) {
	port := freePort(t)
	gw := gateway("web", "HTTP", port, "")
	e := newEnv(t, []filetest.Cluster{{Name: "us", Manifests: gw}}, func(o *proxy.Options) {
		o.Addresses = []string{"127.0.0.1", "web.example.com"}
	})
	const node = "us/default/web"

	programmed := waitProgrammed(t, e, node, func(c string) bool { return c == "Programmed" })
	var addrs []string
	for _, a := range programmed.Addresses {
		addrs = append(addrs, string(*a.Type)+" "+a.Value)
	}
	// The Gateway names no address, and the listeners bind 127.0.0.1 (the env's bind address),
	// which stays the status address: advertised addresses stand in for an unspecified one only.
	if want := []string{"IPAddress 127.0.0.1"}; !slices.Equal(addrs, want) {
		t.Errorf("status.addresses = %v, want %v", addrs, want)
	}
	if r := e.xds.ProxyReport(node); !slices.Equal(r.Addresses, []string{"127.0.0.1", "web.example.com"}) {
		t.Errorf("advertised addresses = %v, want [127.0.0.1 web.example.com]", r.Addresses)
	}

	e.update([]filetest.Cluster{{Name: "us", Manifests: strings.Replace(gw,
		"gatewayClassName: strait", "gatewayClassName: strait\n  addresses: [{type: IPAddress, value: 192.0.2.1}]", 1)}})
	st := waitProgrammed(t, e, node, func(c string) bool { return c == "AddressNotUsable" })
	if c := meta.FindStatusCondition(st.Conditions, "Programmed"); !strings.Contains(c.Message, "192.0.2.1") {
		t.Errorf("Programmed message %q does not name the address", c.Message)
	}
	// The proxy kept serving its last good configuration.
	if status, _ := get(t, &http.Client{Timeout: 5 * time.Second}, url(port, "/"), "", nil); status != 404 {
		t.Errorf("after the rejected update the old listener answered %d, want 404 (no route)", status)
	}
}

// waitProgrammed waits until the Gateway's status, with its proxies' reports applied, has a
// Programmed reason that satisfies ok, and returns that status.
func waitProgrammed(t *testing.T, e *env, node string, ok func(reason string) bool) *gwapiv1.GatewayStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		var c *metav1.Condition
		var gs *gwapiv1.GatewayStatus
		for _, st := range translator.WithProxyReports(e.last.Statuses, e.xds.ProxyReport) {
			if s, isGateway := st.Status.(*gwapiv1.GatewayStatus); isGateway && st.Cluster+"/"+st.Namespace+"/"+st.Name == node {
				gs, c = s, meta.FindStatusCondition(s.Conditions, "Programmed")
				break
			}
		}
		if c != nil && ok(c.Reason) {
			return gs
		}
		// Also when the Gateway has no status yet: waiting, not spinning, until a report.
		select {
		case <-e.xds.ProxyChanges():
		case <-ctx.Done():
			t.Fatalf("Gateway %s: Programmed is %+v", node, c)
		}
	}
}
