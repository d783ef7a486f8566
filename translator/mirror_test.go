package translator_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/strait-gw/strait/translator"
)

// TestMirrorGolden computes the mirror objects of every testdata/mirror/<case>.in.yaml and
// compares them with testdata/mirror/<case>.out.yaml. Run
// `go test ./translator -run TestMirrorGolden -update` to rewrite them.
func TestMirrorGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/mirror/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases in testdata/mirror/")
	}
	for _, in := range cases {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			input := loadGoldenInput(t, in)
			got := marshalYAML(t, translator.ComputeMirrors(input))
			if again := marshalYAML(t, translator.ComputeMirrors(input)); again != got {
				t.Fatalf("mirror computation is not deterministic:\n%s", cmp.Diff(got, again))
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
				t.Errorf("mirrors differ from %s (-want +got):\n%s", outPath, diff)
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

func TestMirrorName(t *testing.T) {
	long := strings.Repeat("a", 50)
	tests := []struct {
		service, cluster string
		want             string
	}{
		{service: "podinfo", cluster: "eu", want: "podinfo-eu"},
		// Exactly 63 characters: kept as it is.
		{service: strings.Repeat("s", 58), cluster: "us-1", want: strings.Repeat("s", 58) + "-us-1"},
	}
	for _, tt := range tests {
		if got := translator.MirrorName(tt.service, tt.cluster); got != tt.want {
			t.Errorf("MirrorName(%q, %q) = %q, want %q", tt.service, tt.cluster, got, tt.want)
		}
	}

	// Too long: shortened to a valid Service name that tells clusters and services apart.
	a := translator.MirrorName(long, "europe-west-1")
	b := translator.MirrorName(long, "europe-west-2")
	c := translator.MirrorName(long+"b", "europe-west-1")
	for _, n := range []string{a, b, c} {
		if errs := validation.IsDNS1035Label(n); len(errs) > 0 {
			t.Errorf("MirrorName gave %q, not a valid Service name: %v", n, errs)
		}
		if !strings.HasPrefix(n, long) {
			t.Errorf("MirrorName gave %q, which does not start with the Service name", n)
		}
	}
	if a == b || a == c || b == c {
		t.Errorf("shortened names collide: %q %q %q", a, b, c)
	}
	// A cut that falls on a dash does not leave "--".
	if n := translator.MirrorName(strings.Repeat("x", 53), "cluster-with-a-long-name"); strings.Contains(n, "--") {
		t.Errorf("MirrorName gave %q, with a double dash", n)
	}
}
