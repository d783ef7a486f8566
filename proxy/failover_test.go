package proxy_test

import (
	"net/http"
	"testing"
	"time"
)

// TestServiceImportFailover kills the Gateway's own cluster's backends of a ServiceImport.
// No request fails: one refused by a dead endpoint goes to another (the other us endpoint,
// then eu). Outlier detection, fed with the refusals, ejects each dead endpoint after 3
// consecutive gateway failures; after that every request goes to the next priority (eu)
// directly.
func TestServiceImportFailover(t *testing.T) {
	us1, us2, eu := startEcho(t, "us", "us-1"), startEcho(t, "us", "us-2"), startEcho(t, "eu", "eu-1")
	port, _, _ := importEnv(t, eu, us1, us2)
	client := &http.Client{Timeout: 5 * time.Second}
	for range 50 {
		if status, er := get(t, client, url(port, "/"), "podinfo.local", nil); status != http.StatusOK || er.Cluster != "us" {
			t.Fatalf("before failover: status %d from %q, want 200 from us (priority 0)", status, er.Cluster)
		}
	}

	us1.stop()
	us2.stop()
	// Until both us endpoints are ejected, priority 0 is partly healthy and keeps a share of
	// the traffic (Envoy's priority load): its requests are refused there and answered by
	// eu all the same.
	for i := range 50 {
		status, er := get(t, client, url(port, "/"), "podinfo.local", nil)
		if status != http.StatusOK || er.Cluster != "eu" {
			t.Fatalf("request %d after us died: status %d from %q, want 200 from eu", i, status, er.Cluster)
		}
	}
	for i := range 200 {
		status, er := get(t, client, url(port, "/"), "podinfo.local", nil)
		if status != http.StatusOK || er.Cluster != "eu" {
			t.Fatalf("request %d after failover: status %d from %q, want 200 from eu", i, status, er.Cluster)
		}
	}
}
