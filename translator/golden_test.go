package translator_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/provider/file"
	"github.com/strait-gw/strait/translator"
)

var update = flag.Bool("update", false, "rewrite the golden *.out.yaml files")

// goldenCase is the format of testdata/<case>.in.yaml: member clusters, each with its
// manifests inline, read through the file provider as `strait run` would read them.
type goldenCase struct {
	BindAddress string `json:"bindAddress,omitempty"`
	Clusters    []struct {
		Name      string            `json:"name"`
		Region    string            `json:"region,omitempty"`
		Zone      string            `json:"zone,omitempty"`
		Network   string            `json:"network,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
		Manifests string            `json:"manifests"`
	} `json:"clusters"`
}

// loadGoldenInput writes a case's clusters out as a config file and manifests directories
// and loads them with the file provider.
func loadGoldenInput(t *testing.T, path string) *translator.Input {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gc goldenCase
	if err := yaml.UnmarshalStrict(data, &gc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dir := t.TempDir()
	type clusterConfig struct {
		Name      string            `json:"name"`
		Region    string            `json:"region,omitempty"`
		Zone      string            `json:"zone,omitempty"`
		Network   string            `json:"network,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
		Manifests string            `json:"manifests"`
	}
	cfg := map[string]any{"apiVersion": "strait.dev/v1alpha1", "kind": "StraitConfig"}
	if gc.BindAddress != "" {
		cfg["proxy"] = map[string]any{"bindAddress": gc.BindAddress}
	}
	var clusters []clusterConfig
	for _, c := range gc.Clusters {
		if err := os.MkdirAll(filepath.Join(dir, c.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.Name, "manifests.yaml"), []byte(c.Manifests), 0o600); err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, clusterConfig{Name: c.Name, Region: c.Region, Zone: c.Zone, Network: c.Network, Labels: c.Labels, Manifests: c.Name})
	}
	cfg["clusters"] = clusters
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "strait.yaml"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := file.Load(filepath.Join(dir, "strait.yaml"))
	if err != nil {
		t.Fatalf("%s: config: %v", path, err)
	}
	in, _, err := file.LoadInput(loaded)
	if err != nil {
		t.Fatalf("%s: manifests: %v", path, err)
	}
	return in
}

// TestGolden translates every testdata/<case>.in.yaml and compares the IR and statuses with
// testdata/<case>.out.yaml. Run `go test ./translator -run TestGolden -update` to rewrite them.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases in testdata/")
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			input := loadGoldenInput(t, in)
			got := marshalOutput(t, translator.Translate(input))
			// Translating twice gives the same output: nothing depends on map order.
			if again := marshalOutput(t, translator.Translate(input)); again != got {
				t.Fatalf("translation is not deterministic:\n%s", cmp.Diff(got, again))
			}
			outPath := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(outPath, []byte(got), 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output differs from %s (-want +got):\n%s", outPath, diff)
			}
		})
	}
}

func marshalOutput(t *testing.T, out *translator.Output) string {
	t.Helper()
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}
