// Package filetest writes member clusters' manifests to a temporary directory and loads them
// with the file provider, so that tests build their input the way `strait run` reads it.
package filetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/translator"
)

// Cluster is one member cluster with its manifests as YAML text.
type Cluster struct {
	Name      string            `json:"name"`
	Region    string            `json:"region,omitempty"`
	Zone      string            `json:"zone,omitempty"`
	Network   string            `json:"network,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Manifests string            `json:"manifests"`
}

// Write writes a config file for the clusters into dir (manifests in dir/<cluster>/) and
// returns its path. bindAddress may be empty for the default.
func Write(t testing.TB, dir, bindAddress string, clusters []Cluster) string {
	t.Helper()
	type clusterConfig struct {
		Cluster
		Manifests string `json:"manifests"`
	}
	cfg := map[string]any{"apiVersion": "strait.dev/v1alpha1", "kind": "StraitConfig"}
	if bindAddress != "" {
		cfg["proxy"] = map[string]any{"bindAddress": bindAddress}
	}
	var out []clusterConfig
	for _, c := range clusters {
		if err := os.MkdirAll(filepath.Join(dir, c.Name), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name, "manifests.yaml"), []byte(c.Manifests), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, clusterConfig{Cluster: c, Manifests: c.Name})
	}
	cfg["clusters"] = out
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "strait.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Input writes the clusters into dir and loads them as the translator's input.
func Input(t testing.TB, dir, bindAddress string, clusters []Cluster) *translator.Input {
	t.Helper()
	cfg, err := file.Load(Write(t, dir, bindAddress, clusters))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	in, _, err := file.LoadInput(cfg)
	if err != nil {
		t.Fatalf("manifests: %v", err)
	}
	return in
}

// Gateway returns the manifests of a GatewayClass "strait" of Strait's controller and a
// Gateway in namespace default with one listener named "l". extra is added to the listener's
// flow mapping, e.g. ", tls: {mode: Passthrough}".
func Gateway(name, protocol string, port int, extra string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: strait}
spec: {controllerName: strait.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  gatewayClassName: strait
  listeners: [{name: l, protocol: %s, port: %d%s}]
`, name, protocol, port, extra)
}

// Service returns the manifests of a Service in namespace default with port 80 named
// "http" and, for each backend port, an EndpointSlice with one ready endpoint on 127.0.0.1
// at that port. export labels it strait.dev/export=true; appProtocol may be empty.
func Service(name string, export bool, appProtocol string, ports ...int) string {
	labels := ""
	if export {
		labels = `, labels: {strait.dev/export: "true"}`
	}
	proto := ""
	if appProtocol != "" {
		proto = ", appProtocol: " + appProtocol
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default%s}\nspec: {ports: [{name: http, port: 80%s}]}\n", name, labels, proto)
	for i, port := range ports {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %s-%d, namespace: default, labels: {kubernetes.io/service-name: %s}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
`, name, i, name, port)
	}
	return b.String()
}
