package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"
)

// clientHelloTimeout bounds how long a client may take to send its ClientHello.
const clientHelloTimeout = 10 * time.Second

var errHelloRead = errors.New("client hello read")

// recordingConn records what is read through it and discards what is written, so that
// crypto/tls can parse a ClientHello without answering it.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.buf.Write(p[:n])
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) { return len(p), nil }

// readClientHello reads the TLS ClientHello that starts a connection and returns its server
// name and every byte read, which the connection's handler must see first (replayConn).
func readClientHello(conn net.Conn) (serverName string, read []byte, err error) {
	rec := &recordingConn{Conn: conn}
	if err := conn.SetReadDeadline(time.Now().Add(clientHelloTimeout)); err != nil {
		return "", nil, err
	}
	var hello *tls.ClientHelloInfo
	herr := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		hello = h
		return nil, errHelloRead
	}}).Handshake()
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return "", nil, err
	}
	if hello == nil {
		return "", nil, errors.Join(errors.New("no TLS ClientHello"), herr)
	}
	return strings.ToLower(hello.ServerName), rec.buf.Bytes(), nil
}

// replayConn is a connection whose first reads return bytes already read from it.
type replayConn struct {
	net.Conn
	r io.Reader
}

func newReplayConn(c net.Conn, read []byte) *replayConn {
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(read), c)}
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chainFor picks the filter chain for a server name as Envoy does: an exact name, then the
// longest matching "*.suffix", then the chain without names.
func (lc *listenerConfig) chainFor(serverName string) *chainConfig {
	var best *chainConfig
	bestLen := -1
	for _, c := range lc.chains {
		if len(c.serverNames) == 0 {
			if best == nil {
				best = c
			}
			continue
		}
		for _, n := range c.serverNames {
			switch {
			case n == serverName:
				return c
			case strings.HasPrefix(n, "*.") && strings.HasSuffix(serverName, n[1:]) && len(n) > bestLen:
				best, bestLen = c, len(n)
			}
		}
	}
	return best
}
