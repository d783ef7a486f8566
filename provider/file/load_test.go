package file

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/translator"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestLoadInputExample loads testdata/example and compares the Input with
// testdata/example.golden.yaml (rewritten with -update).
func TestLoadInputExample(t *testing.T) {
	t.Chdir("testdata")
	cfg, err := Load("example/strait.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, warnings, err := LoadInput(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantWarnings := []Warning{{File: "example/clusters/us/podinfo.yaml", Line: 38, Message: "skipped apps/v1 Deployment: not a kind Strait reads"}}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	got, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "example.golden.yaml"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("input (-want +got), rerun with -update if intended:\n%s", diff)
	}
}

// writeTree writes files (relative path -> content) under dir. Each file is replaced
// atomically, through a hidden temporary file, so that a watcher never reads half of it.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

const oneClusterConfig = `apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- name: c
  manifests: m
`

// loadTree writes a one-cluster configuration reading the directory m, and files under it,
// into a temporary working directory, and loads it.
func loadTree(t *testing.T, files map[string]string) (*translator.Input, []Warning, error) {
	t.Helper()
	t.Chdir(t.TempDir())
	writeTree(t, "m", files)
	writeTree(t, ".", map[string]string{"strait.yaml": oneClusterConfig})
	cfg, err := Load("strait.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return LoadInput(cfg)
}

const gatewayClass = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: strait
spec:
  controllerName: strait.dev/gateway-controller
`

func TestLoadInputErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{{
		name: "unknown fields, each at its line, in every file",
		files: map[string]string{
			"a.yaml": gatewayClass + `---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
  labelz: {a: b}
spec:
  gatewayClassName: strait
  listeners:
  - name: http
    protocol: HTTP
    port: 80
  - name: other
    protocol: HTTP
    prot: 81
`,
			"sub/b.yaml": `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports:
  - port: 80
    tragetPort: 8080
`,
		},
		want: []string{
			`m/a.yaml:12: unknown field "metadata.labelz"`,
			`m/a.yaml:21: unknown field "spec.listeners[1].prot"`,
			`m/sub/b.yaml:7: unknown field "spec.ports[0].tragetPort"`,
		},
	}, {
		name: "wrong type, at the item that has it",
		files: map[string]string{"gw.yaml": `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: strait
  listeners:
  - {name: a, protocol: HTTP, port: 80}
  - name: b
    protocol: HTTP
    port: eighty
`},
		want: []string{`m/gw.yaml:10: spec.listeners[1].port: cannot unmarshal string into int32`},
	}, {
		name: "syntax error after a good document, at its line",
		files: map[string]string{"gw.yaml": gatewayClass + `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
   namespace: y
`},
		want: []string{`m/gw.yaml:12: mapping values are not allowed in this context`},
	}, {
		name: "duplicate key",
		files: map[string]string{"cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  name: y
`},
		want: []string{`m/cm.yaml:5: mapping key "name" already defined at line 4`},
	}, {
		name: "missing kind, not an object, missing name",
		files: map[string]string{"bad.yaml": `apiVersion: v1
metadata: {name: x}
---
- a
- b
---
apiVersion: v1
kind: ConfigMap
metadata:
  namespace: x
`},
		want: []string{
			`m/bad.yaml:1: apiVersion and kind are required`,
			`m/bad.yaml:4: a manifest must be a mapping (an object)`,
			`m/bad.yaml:9: ConfigMap: metadata.name is required`,
		},
	}, {
		name: "version not served",
		files: map[string]string{"gw.yaml": `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: Gateway
metadata: {name: edge}
`},
		want: []string{`m/gw.yaml:1: Gateway is not served in gateway.networking.k8s.io/v1alpha2; use gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1`},
	}, {
		name: "duplicate objects name both files",
		files: map[string]string{
			"a.yaml": "# first\n" + gatewayClass,
			"b.yaml": `apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: GatewayClass
metadata:
  name: strait
  namespace: ignored
spec:
  controllerName: strait.dev/gateway-controller
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: default}
`,
		},
		want: []string{
			`m/b.yaml:5: duplicate GatewayClass strait: already defined at m/a.yaml:2`,
			`m/b.yaml:13: duplicate Service default/s: already defined at m/b.yaml:1`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, _, err := loadTree(t, tt.files)
			if err == nil {
				t.Fatalf("no error; input %+v", in)
			}
			if in != nil {
				t.Errorf("input returned with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadInputWarnings(t *testing.T) {
	in, warnings, err := loadTree(t, map[string]string{
		"w.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: strait.dev/v1alpha1
kind: ClusterLink
metadata: {name: eu, namespace: strait-system}
spec:
  kubeconfigSecretRef: {name: eu-kubeconfig}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, namespace: default}
`,
		".hidden.yaml":      "not: [valid",
		".git/config.yaml":  "not: [valid",
		"notes.txt":         "not: [valid",
		"sub/.#w.yaml":      "not: [valid",
		"sub/service.yml":   "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: apps}\n",
		"sub/empty.yaml":    "# nothing\n---\n---\n",
		"sub/deeper/x.yaml": "",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{
		{File: "m/w.yaml", Line: 1, Message: "skipped apps/v1 Deployment: not a kind Strait reads"},
		{File: "m/w.yaml", Line: 5, Message: "skipped ClusterLink strait-system/eu: the file provider takes its clusters from the config file"},
		{File: "m/w.yaml", Line: 11, Message: `Namespace apps is cluster-scoped: metadata.namespace "default" ignored`},
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := len(in.Clusters[0].Services); got != 1 {
		t.Errorf("%d services, want 1", got)
	}
	if ns := in.Clusters[0].Namespaces; len(ns) != 1 || ns[0].Namespace != "" {
		t.Errorf("namespaces %+v, want apps without a namespace", ns)
	}
}

func TestLoadInputAdjustments(t *testing.T) {
	in, _, err := loadTree(t, map[string]string{
		"z.yaml": `apiVersion: v1
kind: Secret
metadata: {name: b, namespace: ns2}
data: {a: b2xk, b: b2xk}
stringData: {b: new, c: added}
---
apiVersion: v1
kind: Secret
metadata: {name: a}
`,
		"a.yaml": `apiVersion: v1
kind: Secret
metadata: {name: c, namespace: ns1}
type: kubernetes.io/tls
---
apiVersion: v1
kind: Namespace
metadata:
  name: ns2
  labels: {team: x, kubernetes.io/metadata.name: wrong}
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	cr := in.Clusters[0]
	var secrets []string
	for _, s := range cr.Secrets {
		secrets = append(secrets, s.Namespace+"/"+s.Name+" "+string(s.Type))
	}
	if diff := cmp.Diff([]string{"default/a Opaque", "ns1/c kubernetes.io/tls", "ns2/b Opaque"}, secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	b := cr.Secrets[2]
	wantData := map[string][]byte{"a": []byte("old"), "b": []byte("new"), "c": []byte("added")}
	if diff := cmp.Diff(wantData, b.Data); diff != "" || b.StringData != nil {
		t.Errorf("data (-want +got):\n%s\nstringData %v", diff, b.StringData)
	}
	if b.APIVersion != "v1" || b.Kind != "Secret" {
		t.Errorf("type meta %v", b.TypeMeta)
	}
	namespaces := map[string]map[string]string{}
	var order []string
	for _, ns := range cr.Namespaces {
		namespaces[ns.Name] = ns.Labels
		order = append(order, ns.Name)
	}
	wantNamespaces := map[string]map[string]string{
		"default": {corev1.LabelMetadataName: "default"},
		"ns1":     {corev1.LabelMetadataName: "ns1"},
		"ns2":     {corev1.LabelMetadataName: "ns2", "team": "x"},
	}
	if diff := cmp.Diff(wantNamespaces, namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"default", "ns1", "ns2"}, order); diff != "" {
		t.Errorf("namespace order (-want +got):\n%s", diff)
	}
}

func TestLoadInputListAndUnreadableFiles(t *testing.T) {
	t.Chdir(t.TempDir())
	writeTree(t, "m", map[string]string{"list.yaml": `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b}
  bogus: true
---
apiVersion: v1
kind: List
items: {}
`})
	writeTree(t, ".", map[string]string{"strait.yaml": oneClusterConfig})
	if err := os.Symlink("nowhere.yaml", filepath.Join("m", "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("strait.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadInput(cfg)
	want := []string{
		"m/dangling.yaml: open m/dangling.yaml: no such file or directory",
		`m/list.yaml:10: unknown field "bogus"`,
		"m/list.yaml:12: a List needs a list of items",
	}
	if err == nil {
		t.Fatal("no error")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Error("ErrorList does not unwrap to the file's error")
	}
}

func TestWarningString(t *testing.T) {
	w := Warning{File: "m/a.yaml", Line: 3, Message: "skipped"}
	if got := w.String(); got != "m/a.yaml:3: skipped" {
		t.Errorf("String() = %q", got)
	}
}
