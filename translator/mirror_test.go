package translator_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/strait-gw/strait/translator"
)

// TestMirrorGolden computes the mirror objects of every testdata/mirror/<case>.in.yaml and
// compares them with testdata/mirror/<case>.out.yaml. Run
// `go test ./translator -run TestMirrorGolden -update` to rewrite them.
func TestMirrorGolden(t *testing.T) {
	runGolden(t, "testdata/mirror", func(in *translator.Input) any { return translator.ComputeMirrors(in) })
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
