package xdsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/strait-gw/strait/xds"
)

// TLSCredentials returns Credentials for mutual TLS with the control plane: the client
// presents the certificate and key of files, whose certificate carries the proxy's SPIFFE ID
// (see xds.SPIFFEID), and verifies the server's certificate with the CA bundle of files,
// for serverName or, when serverName is "", for the host of Options.Server. The files are
// read on every connection and parsed again when they change (see xds.TLSSource), so a
// rotated certificate is used from the next connection on, without a restart.
func TLSCredentials(files xds.TLSFiles, serverName string, log *slog.Logger) (credentials.TransportCredentials, error) {
	src, err := xds.NewTLSSource(files, log)
	if err != nil {
		return nil, fmt.Errorf("xds client: %w", err)
	}
	return &tlsCredentials{source: src, serverName: serverName}, nil
}

// tlsCredentials builds gRPC's TLS credentials afresh for every handshake, from the
// current files: gRPC's own take a fixed CA pool.
type tlsCredentials struct {
	source     *xds.TLSSource
	serverName string
}

// ClientHandshake implements credentials.TransportCredentials.
func (c *tlsCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cert, pool := c.source.Current()
	// gRPC's TLS credentials verify the server for the authority they are given.
	if c.serverName != "" {
		authority = c.serverName
	}
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
		// Always present the certificate, even to a server whose accepted CAs do not list its
		// issuer: the server's error then says why, where sending none would not.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
	})
	return creds.ClientHandshake(ctx, authority, conn)
}

// ServerHandshake implements credentials.TransportCredentials; these are a client's.
func (c *tlsCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("xds client credentials cannot serve")
}

// Info implements credentials.TransportCredentials.
func (c *tlsCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

// Clone implements credentials.TransportCredentials.
func (c *tlsCredentials) Clone() credentials.TransportCredentials {
	clone := *c
	return &clone
}

// OverrideServerName implements credentials.TransportCredentials.
func (c *tlsCredentials) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}
