package proxy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait-gw/strait/e2e/testcert"
	"github.com/strait-gw/strait/provider/file/filetest"
)

// testCert is a self-signed certificate for some DNS names.
type testCert struct {
	certPEM, keyPEM []byte
	pool            *x509.CertPool
	tls             tls.Certificate
}

func newTestCert(t *testing.T, names ...string) *testCert {
	t.Helper()
	ca := testcert.NewCA(t)
	cert, certPEM, keyPEM := ca.Issue(t, x509.ExtKeyUsageServerAuth, names...)
	return &testCert{certPEM: certPEM, keyPEM: keyPEM, pool: ca.Pool, tls: cert}
}

// secret is the kubernetes.io/tls Secret holding the certificate.
func (c *testCert) secret(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: %s, tls.key: %s}
`, name, base64.StdEncoding.EncodeToString(c.certPEM), base64.StdEncoding.EncodeToString(c.keyPEM))
}

// TestTLSTermination serves two HTTPS listeners on one port, each with its own certificate:
// the proxy picks the certificate by SNI, serves HTTP/1.1 and HTTP/2 (ALPN), and forwards.
func TestTLSTermination(t *testing.T) {
	a, b := newTestCert(t, "a.local"), newTestCert(t, "b.local")
	be := startEcho(t, "us", "web-1")
	port := freePort(t)
	manifests := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: strait}
spec: {controllerName: strait.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: default}
spec:
  gatewayClassName: strait
  listeners:
  - {name: a, protocol: HTTPS, port: %[1]d, hostname: a.local, tls: {certificateRefs: [{name: a}]}}
  - {name: b, protocol: HTTPS, port: %[1]d, hostname: b.local, tls: {certificateRefs: [{name: b}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
`, port) + a.secret("a") + "---\n" + b.secret("b") + "---\n" + service("web", false, "", be)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})

	for _, tc := range []struct {
		host string
		cert *testCert
		h2   bool
	}{{"a.local", a, false}, {"b.local", b, false}, {"a.local", a, true}} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{ServerName: tc.host, RootCAs: tc.cert.pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: tc.h2,
		}
		client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		status, er := get(t, client, fmt.Sprintf("https://127.0.0.1:%d/x", port), tc.host, nil)
		tr.CloseIdleConnections()
		if status != http.StatusOK || er.Pod != "web-1" {
			t.Errorf("%s (h2 %v): status %d from %q", tc.host, tc.h2, status, er.Pod)
		}
		if xfp := er.Headers["X-Forwarded-Proto"]; len(xfp) == 0 || xfp[0] != "https" {
			t.Errorf("%s: X-Forwarded-Proto = %v, want https", tc.host, xfp)
		}
	}
	// A client asking for h2 gets it, and is served over it.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: "a.local", RootCAs: a.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/x", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "a.local"
	resp, err := h2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("h2 client got %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "a.local", RootCAs: a.pool, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN = %q, want h2", p)
	}
	conn.Close()
	// An unknown name gets no certificate: no chain serves it.
	if _, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "c.local", InsecureSkipVerify: true}); err == nil {
		t.Error("a handshake for an unknown server name succeeded")
	}
}

// TestTLSPassthrough routes TLS connections by SNI to a backend that terminates TLS itself:
// the client sees the backend's certificate, and the proxy never decrypts.
func TestTLSPassthrough(t *testing.T) {
	backendCert := newTestCert(t, "pass.local")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{backendCert.tls}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "backend terminated TLS for "+r.TLS.ServerName)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	be := &backend{port: ln.Addr().(*net.TCPAddr).Port}

	port := freePort(t)
	manifests := gateway("tls", "TLS", port, ", tls: {mode: Passthrough}") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: pass, namespace: default}
spec:
  parentRefs: [{name: tls}]
  hostnames: [pass.local]
  rules: [{backendRefs: [{name: pass, port: 80}]}]
---
` + service("pass", false, "", be)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "pass.local", RootCAs: backendCert.pool, MinVersion: tls.VersionTLS12},
	}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend terminated TLS for pass.local" {
		t.Errorf("body = %q", body)
	}
	if _, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{ServerName: "other.local", InsecureSkipVerify: true}); err == nil {
		t.Error("a connection for an unrouted server name was forwarded")
	}
}

// TestTCPRoute forwards raw TCP both ways, including the client's half-close.
func TestTCPRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				data, _ := io.ReadAll(c) // until the client's half-close
				_, _ = c.Write([]byte(strings.ToUpper(string(data))))
			}()
		}
	}()
	be := &backend{port: ln.Addr().(*net.TCPAddr).Port}
	port := freePort(t)
	manifests := gateway("tcp", "TCP", port, "") + `---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: upper, namespace: default}
spec:
  parentRefs: [{name: tcp}]
  rules: [{backendRefs: [{name: upper, port: 80}]}]
---
` + service("upper", false, "", be)
	newEnv(t, []filetest.Cluster{{Name: "us", Manifests: manifests}})

	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("hello over tcp")); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "HELLO OVER TCP" {
		t.Errorf("got %q", got)
	}
}
