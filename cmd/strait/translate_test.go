package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runStrait runs the strait command line with args and returns stdout, stderr and the error.
func runStrait(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newRootCommand()
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

// TestTranslateQuickstart translates the README's example and checks the cross-cluster
// canary and the failover backend are there, and that every node's resources are consistent.
func TestTranslateQuickstart(t *testing.T) {
	stdout, stderr, err := runStrait(t, "translate", "--config", "../../examples/quickstart/strait.yaml", "-o", "json")
	if err != nil {
		t.Fatalf("translate: %v\n%s", err, stderr)
	}
	var out struct {
		Nodes map[string]struct {
			Listeners []json.RawMessage `json:"listeners"`
			Routes    []struct {
				VirtualHosts []struct {
					Domains []string `json:"domains"`
					Routes  []struct {
						Route struct {
							Cluster          string `json:"cluster"`
							WeightedClusters struct {
								Clusters []struct {
									Name   string `json:"name"`
									Weight int    `json:"weight"`
								} `json:"clusters"`
							} `json:"weightedClusters"`
						} `json:"route"`
					} `json:"routes"`
				} `json:"virtualHosts"`
			} `json:"routes"`
			Clusters []struct {
				Name string `json:"name"`
			} `json:"clusters"`
			Endpoints []struct {
				ClusterName string `json:"clusterName"`
				Endpoints   []struct {
					Locality struct {
						SubZone string `json:"subZone"`
					} `json:"locality"`
					Priority int `json:"priority"`
				} `json:"endpoints"`
			} `json:"endpoints"`
		} `json:"nodes"`
		Statuses []json.RawMessage `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if len(out.Nodes) != 3 {
		t.Fatalf("got %d nodes, want one per cluster's Gateway", len(out.Nodes))
	}
	us := out.Nodes["us/default/web"]
	split := map[string]int{}
	var failover string
	for _, rc := range us.Routes {
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				switch vh.Domains[0] {
				case "podinfo.local":
					for _, wc := range r.Route.WeightedClusters.Clusters {
						split[wc.Name] = wc.Weight
					}
				case "failover.podinfo.local":
					failover = r.Route.Cluster
				}
			}
		}
	}
	if split["us/default/podinfo/80"] != 90 || split["eu/default/podinfo/80"] != 10 {
		t.Errorf("canary split = %v, want 90 to us and 10 to eu", split)
	}
	if failover != "import/default/podinfo/80" {
		t.Errorf("failover route goes to %q, want the ServiceImport", failover)
	}
	// The ServiceImport seen from us: us first, then the two other regions.
	for _, cla := range us.Endpoints {
		if cla.ClusterName != failover {
			continue
		}
		prio := map[string]int{}
		for _, l := range cla.Endpoints {
			prio[l.Locality.SubZone] = l.Priority
		}
		if prio["us"] != 0 || prio["eu"] != 1 || prio["ap"] != 1 {
			t.Errorf("ServiceImport priorities from us = %v, want us 0, eu and ap 1", prio)
		}
	}
	for node, res := range out.Nodes {
		clusters := map[string]bool{}
		for _, c := range res.Clusters {
			clusters[c.Name] = true
		}
		for _, cla := range res.Endpoints {
			if !clusters[cla.ClusterName] {
				t.Errorf("%s: endpoints for unknown cluster %s", node, cla.ClusterName)
			}
		}
		if len(res.Endpoints) != len(res.Clusters) {
			t.Errorf("%s: %d clusters but %d endpoint sets", node, len(res.Clusters), len(res.Endpoints))
		}
	}
	if len(out.Statuses) == 0 {
		t.Error("no statuses printed")
	}
}

// TestTranslateBadInput checks unreadable input exits 1 with every problem as file:line.
func TestTranslateBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "us"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "apiVersion: strait.dev/v1alpha1\nkind: StraitConfig\nclusters:\n- {name: us, manifests: us}\n"
	bad := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  hostnamez: [a]\n"
	for name, content := range map[string]string{"strait.yaml": cfg, "us/route.yaml": bad} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err := runStrait(t, "translate", "--config", filepath.Join(dir, "strait.yaml"))
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	if want := "route.yaml:5:"; !strings.Contains(stderr, want) || !strings.Contains(stderr, "hostnamez") {
		t.Errorf("stderr = %q, want the problem at %s naming the field", stderr, want)
	}

	_, _, err = runStrait(t, "translate", "--config", filepath.Join(dir, "strait.yaml"), "-o", "xml")
	if err == nil || !strings.Contains(err.Error(), "yaml or json") {
		t.Errorf("-o xml: err = %v, want a usage error", err)
	}
}
