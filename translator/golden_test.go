package translator_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/provider/file/filetest"
	"github.com/strait-gw/strait/translator"
)

var update = flag.Bool("update", false, "rewrite the golden *.out.yaml files")

// goldenCase is the format of testdata/<case>.in.yaml: member clusters, each with its
// manifests inline, read through the file provider as `strait run` would read them.
type goldenCase struct {
	BindAddress string             `json:"bindAddress,omitempty"`
	Clusters    []filetest.Cluster `json:"clusters"`
}

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
	return filetest.Input(t, t.TempDir(), gc.BindAddress, gc.Clusters)
}

// TestGolden translates every testdata/<case>.in.yaml and compares the IR and statuses with
// testdata/<case>.out.yaml. Run `go test ./translator -run TestGolden -update` to rewrite them.
func TestGolden(t *testing.T) {
	runGolden(t, "testdata", func(in *translator.Input) any { return translator.Translate(in) })
}

// runGolden runs compute on every <dir>/<case>.in.yaml and compares the result, as YAML, with
// <dir>/<case>.out.yaml, which -update rewrites. compute runs twice per case: the same input
// must give the same output, so nothing may depend on map order.
func runGolden(t *testing.T, dir string, compute func(*translator.Input) any) {
	t.Helper()
	cases, err := filepath.Glob(filepath.Join(dir, "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatalf("no golden cases in %s/", dir)
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			input := loadGoldenInput(t, in)
			got := marshalYAML(t, compute(input))
			if again := marshalYAML(t, compute(input)); again != got {
				t.Fatalf("output is not deterministic:\n%s", cmp.Diff(got, again))
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

func marshalYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
