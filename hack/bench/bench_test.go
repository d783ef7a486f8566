//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 7s test @ http://127.0.0.1:8080/
  1 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.41ms    1.05ms  30.99ms   93.66%
    Req/Sec    24.61k     1.25k   26.10k    85.71%
  171337 requests in 7.00s, 30.02MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  24476.56
Transfer/sec:      4.29MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 24476.56 || r.requests != 171337 || r.socketErrors != 15 || r.non2xx != 5 {
		t.Fatalf("parsed %+v", r)
	}
	s := r.toSample()
	if s.err != "" || s.value != 24476.56 || !strings.Contains(s.warn, "read 12, timeout 3") {
		t.Fatalf("sample %+v", s)
	}

	r.non2xx = 5000
	if s := r.toSample(); s.err == "" {
		t.Fatalf("over 1%% failed requests should be an error: %+v", s)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("want an error for output without Requests/sec")
	}
}

const h2loadOutput = `finished in 4.00s, 36446.33 req/s, 3.58MB/s
requests: 109339 total, 109339 started, 109339 done, 109339 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 109340 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 10.74MB (11261975) total, 6.91MB (7240779) headers (space savings 50.51%), 5.07MB (5319720) data
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOutput)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.toSample(); s.err != "" || s.warn != "" || s.value != 36446.33 {
		t.Fatalf("sample %+v from %+v", s, r)
	}
	// h2load counts a 404 as succeeded; the bench does not.
	notFound := strings.Replace(h2loadOutput, "109340 2xx, 0 3xx, 0 4xx", "0 2xx, 0 3xx, 109340 4xx", 1)
	r, err = parseH2load(notFound)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.toSample(); s.err == "" {
		t.Fatalf("all-404 run should be an error: %+v", s)
	}
}

// TestPairedRatio: the ratio of two columns is taken round by round, so a round in which
// the machine was slow for both does not count against either.
func TestPairedRatio(t *testing.T) {
	strait := []sample{{value: 10}, {value: 40}, {value: 21}}
	haproxy := []sample{{value: 20}, {value: 40}, {value: 20}}
	// Per round 0.5, 1, 1.05: the median is 1; the medians' ratio would be 21/20.
	if r, ok := pairedRatio(strait, haproxy); !ok || r != 1 {
		t.Errorf("paired ratio %v %v, want 1", r, ok)
	}
	if r, ok := pairedRatio([]sample{{value: 3}, {err: "x"}}, []sample{{value: 2}, {value: 9}}); !ok || r != 1.5 {
		t.Errorf("paired ratio skipping a failed round: %v %v, want 1.5", r, ok)
	}
	if _, ok := pairedRatio(strait, haproxy[:2]); ok {
		t.Error("columns with different round counts were paired")
	}
}

func TestMedian(t *testing.T) {
	samples := []sample{{value: 3}, {err: "x"}, {value: 1}, {value: 2}}
	if m, ok := median(samples); !ok || m != 2 {
		t.Fatalf("median = %v %v, want 2", m, ok)
	}
	if m, _ := median([]sample{{value: 1}, {value: 4}}); m != 2.5 {
		t.Fatalf("median of two = %v, want 2.5", m)
	}
	if _, ok := median([]sample{{err: "x"}}); ok {
		t.Fatal("median of errors only should not be ok")
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 23456.7: "23,457", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{183: "0.183", 12345: "12.35", 123456: "123.5"} {
		if got := ms(in); got != want {
			t.Errorf("ms(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	kb, err := parseVMRSS("Name:\tnginx\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nRssAnon:\t 100 kB\n")
	if err != nil || kb != 4321 {
		t.Fatalf("parseVMRSS = %d, %v", kb, err)
	}
}

func TestParseFlagsQuick(t *testing.T) {
	o, err := parseFlags([]string{"--quick", "--duration", "5s", "--targets", "strait,direct"})
	if err != nil {
		t.Fatal(err)
	}
	if o.runs != 1 || o.duration != 5*time.Second || o.latDuration != 4*time.Second {
		t.Fatalf("quick defaults not applied around an explicit flag: %+v", o)
	}
	if strings.Join(o.targets, ",") != "direct,strait" {
		t.Fatalf("targets %v, want table order direct,strait", o.targets)
	}
	if _, err := parseFlags([]string{"--targets", "envoy"}); err == nil {
		t.Fatal("want an error for an unknown target")
	}
}

func TestStraitConfig(t *testing.T) {
	dir := t.TempDir()
	path, err := writeStraitConfig(dir, 18080, 19000, 18000, 19901)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := os.ReadFile(filepath.Join(dir, "clusters", "bench", "bench.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"xds: 127.0.0.1:18000", "admin: 127.0.0.1:19901", "manifests: clusters/bench"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("strait.yaml lacks %q:\n%s", want, cfg)
		}
	}
	for _, want := range []string{"port: 18080", "targetPort: 19000", "port: 19000", "kind: HTTPRoute"} {
		if !strings.Contains(string(manifests), want) {
			t.Errorf("manifests lack %q:\n%s", want, manifests)
		}
	}
}
