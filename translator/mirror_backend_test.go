package translator

import (
	"strings"
	"testing"
)

// TestResolveShortenedMirror checks that a route can name a mirror whose name was shortened:
// Strait's own mirror resolves through its label and annotation, a look-alike does not.
func TestResolveShortenedMirror(t *testing.T) {
	long := "a-service-with-a-rather-long-name-for-its-database-pods"
	mirrorName := MirrorName(long, "europe-west-1")
	port := testPort("http", 80, "")
	mirror := func(labels map[string]string) *ClusterResources {
		svc := testService("default", mirrorName, labels, port)
		svc.Annotations = map[string]string{MirrorOfServiceAnnotation: long}
		return testCluster(Cluster{Name: "europe-west-2"}, svc)
	}
	source := testCluster(Cluster{Name: "europe-west-1"}, testService("default", long, map[string]string{ExportLabel: "true"}, port))

	tr := newTestTranslation(source, mirror(map[string]string{ManagedByLabel: ManagedByValue, MirrorOfClusterLabel: "europe-west-1"}))
	b, err := resolveTestRef(tr, "europe-west-2", "HTTPRoute", testRef(mirrorName, 80))
	if err != nil {
		t.Fatalf("shortened mirror %s did not resolve: %v", mirrorName, err)
	}
	if b.Target.Cluster != "europe-west-1" || b.Target.Name != long {
		t.Errorf("resolved to %s/%s, want europe-west-1/%s", b.Target.Cluster, b.Target.Name, long)
	}

	// Without Strait's managed-by label, the annotation claims nothing.
	tr = newTestTranslation(source, mirror(map[string]string{MirrorOfClusterLabel: "europe-west-1"}))
	if _, err := resolveTestRef(tr, "europe-west-2", "HTTPRoute", testRef(mirrorName, 80)); err == nil || !strings.Contains(err.Msg, "no other cluster exports") {
		t.Errorf("a Service not made by Strait resolved as a shortened mirror (error %v)", err)
	}
}
