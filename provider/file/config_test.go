package file

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	straitv1alpha1 "github.com/strait-gw/strait/api/v1alpha1"
)

func TestLoadDefaultsAndPaths(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"conf/strait.yaml": `apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- name: us
  manifests: clusters/us
- name: eu
  manifests: ` + filepath.Join(dir, "eu") + `
`,
		"conf/clusters/us/.keep": "",
		"eu/.keep":               "",
	})
	cfg, err := Load(filepath.Join(dir, "conf", ".", "strait.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path: filepath.Join(dir, "conf", "strait.yaml"),
		StraitConfig: straitv1alpha1.StraitConfig{
			TypeMeta: straitv1alpha1.StraitConfig{}.TypeMeta,
			Clusters: []straitv1alpha1.ClusterConfig{
				{Name: "us", Manifests: filepath.Join(dir, "conf", "clusters", "us")},
				{Name: "eu", Manifests: filepath.Join(dir, "eu")},
			},
			Proxy: straitv1alpha1.ProxyConfig{BindAddress: "127.0.0.1"},
			XDS:   "127.0.0.1:18000",
			Admin: "127.0.0.1:9901",
		},
	}
	want.StraitConfig.APIVersion = "strait.dev/v1alpha1"
	want.StraitConfig.Kind = "StraitConfig"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

// TestLoadReportsEveryProblem checks that one load reports every problem of the file, each
// at the line of its field.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Chdir(t.TempDir())
	writeTree(t, ".", map[string]string{
		"clusters/ok/.keep": "",
		"strait.yaml": `apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- name: US_East
  manifests: clusters/ok
- name: eu
  labels: {"bad key!": x}
  manifests: clusters/missing
- name: eu
- region: nowhere
  manifests: clusters/ok
- name: ap
  kubeconfig: ap.kubeconfig
proxy:
  bindAddress: localhost
xds: 127.0.0.1
admin: "[::1]:99999"
`,
	})
	_, err := Load("strait.yaml")
	if !errors.As(err, new(ErrorList)) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`strait.yaml:4: clusters[0].name: Invalid value: "US_East": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
		`strait.yaml:7: clusters[1].labels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		`strait.yaml:8: clusters[1].manifests: Invalid value: "clusters/missing": directory clusters/missing does not exist`,
		`strait.yaml:9: clusters[2].name: Duplicate value: "eu"`,
		`strait.yaml:9: clusters[2].manifests: Required value: a directory of YAML manifests, or a kubeconfig`,
		`strait.yaml:10: clusters[3].name: Required value: a DNS label`,
		`strait.yaml:13: clusters[4].kubeconfig: Invalid value: "ap.kubeconfig": file ap.kubeconfig does not exist`,
		`strait.yaml:15: proxy.bindAddress: Invalid value: "localhost": must be an IP address`,
		`strait.yaml:16: xds: Invalid value: "127.0.0.1": must be host:port`,
		`strait.yaml:17: admin: Invalid value: "[::1]:99999": port must be a number from 0 to 65535`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestLoadStrict(t *testing.T) {
	tests := []struct {
		name, config string
		want         []string
	}{{
		name: "unknown fields",
		config: `apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- name: us
  manifest: clusters/us
  manifests: m
proxy:
  bind: 0.0.0.0
`,
		want: []string{
			`strait.yaml:5: unknown field "clusters[0].manifest"`,
			`strait.yaml:8: unknown field "proxy.bind"`,
		},
	}, {
		name: "wrong kind and version",
		config: `apiVersion: strait.dev/v1
kind: Config
clusters: [{name: us, manifests: m}]
`,
		want: []string{
			`strait.yaml:1: apiVersion: Unsupported value: "strait.dev/v1": supported values: "strait.dev/v1alpha1"`,
			`strait.yaml:2: kind: Unsupported value: "Config": supported values: "StraitConfig"`,
		},
	}, {
		name:   "no clusters",
		config: "apiVersion: strait.dev/v1alpha1\nkind: StraitConfig\n",
		want:   []string{`strait.yaml:1: clusters: Required value: at least one cluster is required`},
	}, {
		name:   "two documents",
		config: "apiVersion: strait.dev/v1alpha1\n---\nkind: StraitConfig\n",
		want:   []string{`strait.yaml: want exactly one YAML document, found 2`},
	}, {
		name:   "syntax error",
		config: "apiVersion: strait.dev/v1alpha1\nclusters: [\n",
		want:   []string{`strait.yaml:2: did not find expected node content`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			writeTree(t, ".", map[string]string{"strait.yaml": tt.config, "m/.keep": ""})
			_, err := Load("strait.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want one wrapping os.ErrNotExist", err)
	}
}

// TestLoadKubeconfigCluster checks that a kubeconfig path is resolved against the file's
// directory, and that the file provider refuses to read such a cluster's manifests.
func TestLoadKubeconfigCluster(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"us.kubeconfig": "apiVersion: v1\nkind: Config\n",
		"strait.yaml": `apiVersion: strait.dev/v1alpha1
kind: StraitConfig
clusters:
- name: us
  kubeconfig: us.kubeconfig
`,
	})
	cfg, err := Load(filepath.Join(dir, "strait.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.StraitConfig.Clusters[0].Kubeconfig, filepath.Join(dir, "us.kubeconfig"); got != want {
		t.Errorf("kubeconfig %q, want %q", got, want)
	}
	_, _, err = LoadInput(cfg)
	if err == nil || !strings.Contains(err.Error(), "only strait controller reads kubeconfig clusters") {
		t.Errorf("LoadInput error %v, want one refusing the kubeconfig cluster", err)
	}
}
