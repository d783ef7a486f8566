package xds

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// TLSFiles names the PEM files one end of an xDS connection authenticates with: its
// certificate chain, its private key, and the CA bundle that verifies the other end.
type TLSFiles struct {
	Cert, Key, CA string
}

// TLSSource serves the certificate and CA bundle of a TLSFiles. It reads the files again on
// every call and parses them again when their content has changed, so a rotated certificate
// is used by the next handshake without a restart. Files that do not parse, or a certificate
// that does not match its key (one of them rewritten, the other not yet), leave the last good
// ones in use; the error is logged once per new content. It is safe for concurrent use.
type TLSSource struct {
	files TLSFiles
	log   *slog.Logger

	mu sync.Mutex
	// raw is the content of the files last parsed successfully, failed the content that
	// last failed (so that it is logged once).
	raw, failed [3][]byte
	cert        *tls.Certificate
	pool        *x509.CertPool
}

// NewTLSSource reads files, which must exist and parse: a bad file at startup is the user's
// mistake to report, not one to wait out.
func NewTLSSource(files TLSFiles, log *slog.Logger) (*TLSSource, error) {
	if files.Cert == "" || files.Key == "" || files.CA == "" {
		return nil, errors.New("tls: a certificate, a key and a CA bundle file are all needed")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &TLSSource{files: files, log: log}
	raw, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := s.parse(raw); err != nil {
		return nil, err
	}
	return s, nil
}

// Current returns the current certificate (with its key) and CA bundle.
func (s *TLSSource) Current() (*tls.Certificate, *x509.CertPool) {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.pool
}

// refresh parses the files again if their content changed since the last good parse.
func (s *TLSSource) refresh() {
	raw, err := s.read()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && sameFiles(raw, s.raw) {
		return
	}
	if err == nil {
		if sameFiles(raw, s.failed) {
			return
		}
		if err = s.parseLocked(raw); err == nil {
			s.log.Info("tls files reloaded", "cert", s.files.Cert, "key", s.files.Key, "ca", s.files.CA)
			return
		}
		s.failed = raw
	}
	s.log.Warn("tls files not reloaded; the previous ones stay in use", "error", err)
}

func (s *TLSSource) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, path := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		b, err := os.ReadFile(path)
		if err != nil {
			return raw, fmt.Errorf("tls: %w", err)
		}
		raw[i] = b
	}
	return raw, nil
}

func (s *TLSSource) parse(raw [3][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parseLocked(raw)
}

func (s *TLSSource) parseLocked(raw [3][]byte) error {
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return fmt.Errorf("tls: certificate %s and key %s: %w", s.files.Cert, s.files.Key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw[2]) {
		return fmt.Errorf("tls: CA bundle %s holds no PEM certificate", s.files.CA)
	}
	s.raw, s.failed, s.cert, s.pool = raw, [3][]byte{}, &cert, pool
	return nil
}

func sameFiles(a, b [3][]byte) bool {
	return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1]) && bytes.Equal(a[2], b[2])
}
