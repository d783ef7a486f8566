package kubelet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/strait-gw/strait/internal/pki"
)

// Logs: the kubelet serves GET /containerLogs/{namespace}/{pod}/{container} over HTTPS on
// the node's IP, the endpoint kube-apiserver proxies pods/log to (kubectl logs, client-go
// GetLogs). It supports follow, previous, tailLines and limitBytes; timestamps, sinceSeconds
// and sinceTime are ignored. Its certificate is self-signed and it authenticates nobody:
// kube-apiserver does not verify kubelets unless --kubelet-certificate-authority is set,
// and the address is reachable only from the host and the pods.

// followPollEvery is how often a followed log is checked for new lines.
const followPollEvery = 200 * time.Millisecond

// startLogServer listens on the node IP and returns the port.
func (k *Kubelet) startLogServer() (int, error) {
	cert, err := selfSignedCert(k.opts.NodeName, net.IP(k.net.gateway.AsSlice()))
	if err != nil {
		return 0, fmt.Errorf("kubelet server: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(k.net.gateway.String(), "0"))
	if err != nil {
		return 0, fmt.Errorf("kubelet server: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.serveLogs)
	k.server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return k.ctx },
	}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	k.wg.Go(func() {
		if err := k.server.Serve(tlsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			k.log.Warn("kubelet server", "err", err)
		}
	})
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (k *Kubelet) serveLogs(w http.ResponseWriter, req *http.Request) {
	key := req.PathValue("namespace") + "/" + req.PathValue("pod")
	k.mu.Lock()
	worker := k.workers[key]
	k.mu.Unlock()
	var r *containerRunner
	if worker != nil {
		r = worker.runner(req.PathValue("container"))
	}
	if r == nil {
		http.Error(w, fmt.Sprintf("container %s of pod %s is not running on this node", req.PathValue("container"), key), http.StatusNotFound)
		return
	}
	q := req.URL.Query()
	gen := r.currentGeneration()
	if q.Get("previous") == "true" {
		if gen <= 1 {
			http.Error(w, fmt.Sprintf("previous terminated container %s of pod %s not found", r.spec.Name, key), http.StatusBadRequest)
			return
		}
		gen--
	}
	f, err := os.Open(r.logPath(gen))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer func() { _ = f.Close() }()

	var out io.Writer = w
	if n, err := strconv.ParseInt(q.Get("limitBytes"), 10, 64); err == nil && n > 0 {
		out = &limitWriter{w: w, n: n}
	}
	w.Header().Set("Content-Type", "text/plain")
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		if err := seekTailLines(f, n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if _, err := io.Copy(out, f); err != nil || q.Get("follow") != "true" {
		return
	}
	flusher, _ := w.(http.Flusher)
	for {
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-req.Context().Done():
			return
		case <-time.After(followPollEvery):
		}
		n, err := io.Copy(out, f)
		if err != nil {
			return
		}
		// A followed log ends with its process, as with a real kubelet.
		if n == 0 && !r.runs(gen) {
			return
		}
	}
}

// seekTailLines positions f at the start of its last n lines.
func seekTailLines(f *os.File, n int) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	_, err = f.Seek(int64(tailStart(data, n)), io.SeekStart)
	return err
}

// tailStart is the offset of the last n lines of data.
func tailStart(data []byte, n int) int {
	if n == 0 {
		return len(data)
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for ; n > 0; n-- {
		j := bytes.LastIndexByte(data[:end], '\n')
		if j < 0 {
			return 0
		}
		end = j
	}
	return end + 1
}

// limitWriter stops writing after n bytes.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	full := len(p)
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.w.Write(p)
	l.n -= int64(n)
	if err == nil && n < full {
		err = io.EOF
	}
	return n, err
}

// selfSignedCert is the kubelet server's certificate for its node IP.
func selfSignedCert(name string, ip net.IP) (tls.Certificate, error) {
	pair, err := pki.Issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		DNSNames:    []string{name},
		IPAddresses: []net.IP{ip},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil, 365*24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	return pair.TLS(), nil
}
