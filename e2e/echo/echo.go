// Package echo is the backend Strait's tests, demo and local clusters run: an HTTP server
// that answers every request with JSON describing the request and where it was served, like
// the Gateway API conformance echo server, plus the cluster.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
)

// Identity says where an echo server runs.
type Identity struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Service   string `json:"service,omitempty"`
}

// IdentityFromEnv reads CLUSTER, NAMESPACE, POD_NAME and SERVICE_NAME, as a pod's
// environment would give them.
func IdentityFromEnv() Identity {
	return Identity{
		Cluster:   os.Getenv("CLUSTER"),
		Namespace: os.Getenv("NAMESPACE"),
		Pod:       os.Getenv("POD_NAME"),
		Service:   os.Getenv("SERVICE_NAME"),
	}
}

// Response is what an echo server answers.
type Response struct {
	Identity
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Method  string              `json:"method"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
	// BodyLength is the number of request body bytes read.
	BodyLength int64 `json:"bodyLength"`
}

// Handler answers every request with a Response. A request header
// "X-Echo-Set-Status: 503" sets the answer's status, for tests of retries and failover.
func Handler(id Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		resp := Response{
			Identity:   id,
			Path:       r.URL.RequestURI(),
			Host:       r.Host,
			Method:     r.Method,
			Proto:      r.Proto,
			Headers:    r.Header,
			BodyLength: n,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Pod", id.Pod)
		if s := r.Header.Get("X-Echo-Set-Status"); s != "" {
			w.WriteHeader(statusCode(s))
		}
		enc := json.NewEncoder(w)
		_ = enc.Encode(resp)
	})
}

func statusCode(s string) int {
	code := 0
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			return http.StatusOK
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return http.StatusOK
	}
	return code
}
