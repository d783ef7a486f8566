package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// httpProtocolOptionsName is the key Envoy reads upstream HTTP protocol options from.
const httpProtocolOptionsName = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultIdleTimeout is Envoy's idle timeout of upstream connections.
const defaultIdleTimeout = time.Hour

// Dialer opens TCP connections to endpoints; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// transportOptions are what a cluster's connections depend on. They are comparable: an
// update replaces the connection pool only when they change.
type transportOptions struct {
	http2          bool
	connectTimeout time.Duration
	// idleTimeout closes connections idle that long; 0 never does.
	idleTimeout time.Duration
	// maxIdle caps idle connections (max_connections: an idle pool larger than the
	// breaker allows would only hold sockets the breaker never lets requests use).
	maxIdle int
	// tlsKey identifies the TLS configuration; "" for plaintext.
	tlsKey string
}

// compileTransport reads protocol, timeouts and TLS from a Cluster.
func compileTransport(c *clusterv3.Cluster, l limits, secrets map[string]*tlsv3.Secret) (transportOptions, *tls.Config, error) {
	o := transportOptions{idleTimeout: defaultIdleTimeout, maxIdle: int(l.connections)}
	var err error
	if o.connectTimeout, err = duration(c.GetConnectTimeout(), defaultConnectTimeout, "connect_timeout"); err != nil {
		return o, nil, err
	}
	for name, opts := range c.GetTypedExtensionProtocolOptions() {
		if name != httpProtocolOptionsName {
			return o, nil, fmt.Errorf("typed_extension_protocol_options %q are not supported", name)
		}
		if err := protocolOptions(&o, opts); err != nil {
			return o, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	var cfg *tls.Config
	if ts := c.GetTransportSocket(); ts != nil {
		if cfg, o.tlsKey, err = compileTLS(ts, o.http2, secrets); err != nil {
			return o, nil, fmt.Errorf("upstream TLS: %w", err)
		}
	}
	return o, cfg, nil
}

func protocolOptions(o *transportOptions, a *anypb.Any) error {
	var hpo httpv3.HttpProtocolOptions
	if err := anyTo(a, &hpo); err != nil {
		return err
	}
	if err := onlyFields(&hpo, "common_http_protocol_options", "explicit_http_config"); err != nil {
		return err
	}
	common := hpo.GetCommonHttpProtocolOptions()
	if err := onlyFields(common, "idle_timeout"); err != nil {
		return err
	}
	if d := common.GetIdleTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return fmt.Errorf("idle_timeout %v is invalid", d)
		}
		o.idleTimeout = d.AsDuration() // 0 disables, as in Envoy
	}
	explicit := hpo.GetExplicitHttpConfig()
	switch {
	case explicit == nil:
	case explicit.GetHttp2ProtocolOptions() != nil:
		if err := onlyFields(explicit.GetHttp2ProtocolOptions()); err != nil {
			return err
		}
		o.http2 = true
	case explicit.GetHttpProtocolOptions() != nil:
		if err := onlyFields(explicit.GetHttpProtocolOptions()); err != nil {
			return err
		}
	default:
		return errors.New("only HTTP/1.1 and HTTP/2 are supported upstream")
	}
	return nil
}

// anyTo unmarshals a typed config into m, failing when the type differs.
func anyTo(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return errors.New("no typed config")
	}
	return a.UnmarshalTo(m)
}

// transport is a cluster's connection pool. An update that changes transportOptions retires
// it: requests in flight finish on it, and its connections close as they go idle.
type transport struct {
	rt      *http.Transport
	scheme  string
	opts    transportOptions
	retired atomic.Bool
	// idle is the pool of the proxy's own codec (see Exchange); rt keeps its own.
	idle idlePool
}

// newHTTPTransport builds the pool for a cluster: keep-alive HTTP/1.1, or HTTP/2 with prior
// knowledge (h2c) or over TLS with ALPN. No proxy from the environment, no transparent
// decompression (bodies pass through as they are), and no automatic HTTP/2 upgrade.
// dial opens (and accounts for) a plain TCP connection.
func newHTTPTransport(o transportOptions, cfg *tls.Config, dial func(context.Context, string) (net.Conn, error)) *transport {
	t := &transport{scheme: "http", opts: o, rt: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
			defer cancel()
			conn, err := dial(ctx, addr)
			if err != nil || o.http2 {
				return conn, err
			}
			socket := conn
			if tc, ok := conn.(*trackedConn); ok {
				socket = tc.Conn
			}
			return &reusedConn{Conn: conn, peer: newPeeker(socket)}, nil
		},
		MaxIdleConns:        o.maxIdle,
		MaxIdleConnsPerHost: o.maxIdle,
		IdleConnTimeout:     o.idleTimeout,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		Protocols:           new(http.Protocols),
	}}
	switch {
	case cfg != nil:
		t.scheme = "https"
		// The handshake counts against the connect timeout, as in Envoy.
		t.rt.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, o.connectTimeout)
			defer cancel()
			conn, err := dial(ctx, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, &connectError{err: fmt.Errorf("TLS handshake with %s: %w", addr, err)}
			}
			return tc, nil
		}
		if o.http2 {
			t.rt.Protocols.SetHTTP2(true)
		} else {
			t.rt.Protocols.SetHTTP1(true)
		}
	case o.http2:
		t.rt.Protocols.SetUnencryptedHTTP2(true)
	default:
		t.rt.Protocols.SetHTTP1(true)
	}
	if o.http2 {
		// One dial at a time per endpoint (for HTTP/2, net/http limits only connections
		// being created): requests that find no connection wait for the one being dialed
		// and share it as streams. Otherwise each request of a burst dials its own, which
		// counts against max_connections (failing the request at once) before net/http
		// closes it again as a duplicate.
		t.rt.MaxConnsPerHost = 1
	}
	return t
}

// retire stops reuse of the pool's connections.
func (t *transport) retire() {
	t.retired.Store(true)
	t.rt.CloseIdleConnections()
	t.idle.close()
}

// connectError is a failure to establish a connection (TCP or TLS) to an endpoint.
type connectError struct{ err error }

// Error describes the failure.
func (e *connectError) Error() string { return "connect: " + e.err.Error() }

// Unwrap returns the cause.
func (e *connectError) Unwrap() error { return e.err }

// errPooledConnClosed fails a request's first write on a pooled connection that the
// upstream has closed; nothing of the request was written.
var errPooledConnClosed = errors.New("the upstream closed the pooled connection")

// reusedConn is a plaintext HTTP/1.1 connection of net/http's pool. net/http finds out that
// the upstream closed an idle connection in its read goroutine, which may not have run yet
// when a request takes the connection: the first write of a request on a reused connection
// looks at the socket first, and writes nothing if the upstream closed it. net/http then
// sends the request again on another connection if its body can be rewound (see heldBody),
// or fails it with nothing sent (see RoundTrip). A connection upgraded by a 101 answer
// carries another protocol, whose writes are never checked.
type reusedConn struct {
	net.Conn
	peer *peeker // looks into the dialer's connection
	// answered is set when a response was read since the last write: the next write
	// starts a request on a reused connection. wrote is set by a write: the next bytes
	// read start a response.
	answered, wrote, upgraded atomic.Bool
}

// switching starts a 101 answer, after which the connection is the upgraded protocol's.
var switching = []byte("HTTP/1.1 101")

// Read reads from the connection.
func (c *reusedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.wrote.Swap(false) && bytes.HasPrefix(p[:n], switching) {
			c.upgraded.Store(true)
		}
		c.answered.Store(true)
	}
	return n, err
}

// Write writes to the connection, unless a request starts on a connection the upstream
// closed.
func (c *reusedConn) Write(p []byte) (int, error) {
	if !c.upgraded.Load() && c.answered.Swap(false) {
		if closed, _ := c.peer.peek(); closed {
			return 0, errPooledConnClosed
		}
	}
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

// trackedConn counts an open HTTP connection against its cluster until closed.
type trackedConn struct {
	net.Conn
	open   *counter
	closed atomic.Bool
}

// Close closes the connection, which then no longer counts.
func (c *trackedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.done()
	}
	return c.Conn.Close()
}
