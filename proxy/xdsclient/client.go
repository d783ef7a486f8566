// Package xdsclient is the edge proxy's ADS client: it subscribes to its node's
// configuration on one aggregated stream, delta xDS when the server offers it and state of
// the world otherwise, and hands every complete configuration to the proxy.
//
// # Subscriptions
//
// As Envoy does, the client subscribes to every Listener and Cluster (wildcard), then by name
// to the RouteConfigurations the listeners' connection managers fetch over RDS, the
// ClusterLoadAssignments of EDS clusters, and the Secrets their TLS contexts fetch over SDS.
// A resource no longer referenced is unsubscribed from and forgotten.
//
// # Applying and acknowledging
//
// Every response is acknowledged or rejected as soon as it is processed. Resources that do
// not unmarshal or validate are rejected by name, with the reason, and the rest of the
// response is kept (a rejected resource keeps its previous version, if it had one). When
// every referenced resource is present, the configuration is complete; if it differs from
// the one last applied, Apply receives it. An error from Apply rejects the response that
// completed the configuration: responses that left it incomplete were acknowledged on
// arrival, as Envoy acknowledges a listener that is still warming. A rejected configuration
// is not offered to Apply again; the next change is.
//
// # Outages
//
// The received resources outlive the stream. While the control plane is away the proxy
// runs on the last configuration applied; the client reconnects with exponential backoff
// and full jitter, resubscribes (with its resource versions over delta, so that only changes
// are sent), and calls Apply only if what it then holds differs from what was applied.
package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/strait-gw/strait/xds"
)

// Default reconnection backoff.
const (
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
)

// maxResponseSize bounds one discovery response. gRPC's default of 4 MiB is less than the
// route table of a large Gateway.
const maxResponseSize = 128 << 20

// Options configure a Client.
type Options struct {
	// Server is the control plane's address: "host:port" or "unix:///path".
	Server string
	// Node is the proxy's node id, "<cluster>/<namespace>/<gateway>".
	Node string
	// Addresses are the addresses the proxy advertises in its node metadata
	// (xds.AddressesMetadataKey); the control plane reports them in the Gateway's status.
	Addresses []string
	// Apply receives every complete, consistent configuration that differs from the last one
	// it accepted. A non-nil error rejects it: the response that completed it is NACKed with
	// the error's text and the proxy keeps running on the last configuration Apply accepted.
	// The NACK's code is the error's gRPC code (status.Code) when it has one, such as
	// FailedPrecondition for an address the proxy cannot bind, else InvalidArgument.
	// The resources are shared with the client and must not be modified. Apply is called
	// from Start's goroutine, one call at a time.
	Apply func(*xds.Resources) error
	// Logger logs connections, disconnections and rejections; nil logs to slog.Default().
	Logger *slog.Logger
	// Credentials secure the connection: TLSCredentials for mTLS with a certificate of the
	// control plane's CA, reloaded when its files change. Nil means plaintext, which Start
	// accepts only when the connection stays on this host: a loopback or unspecified
	// address, "localhost", or a unix socket.
	Credentials credentials.TransportCredentials
	// InitialBackoff and MaxBackoff bound the wait before reconnecting, which doubles after
	// each failed attempt and is drawn at random below that bound (full jitter). A stream that
	// received a response resets it. Zero means DefaultInitialBackoff and DefaultMaxBackoff.
	InitialBackoff, MaxBackoff time.Duration
	// DialOptions come after the client's own (credentials, keepalive) and override them.
	DialOptions []grpc.DialOption
}

// Client is the proxy's ADS client. It is a runner: Start connects and keeps the proxy's
// configuration up to date until its context ends.
type Client struct {
	opts Options
	log  *slog.Logger
	node *corev3.Node

	// What follows belongs to Start's goroutine.

	// sotw is set once the server has answered delta xDS with Unimplemented.
	sotw  bool
	state *state
	// applied is the configuration Apply last accepted; rejected, with rejectErr, the one it
	// last rejected, if nothing has changed since.
	applied, rejected *fingerprint
	rejectErr         error
	// acked is the version of each type last accepted over state of the world, sent again
	// on a new stream.
	acked [numTypes]string
}

// New returns a Client; Start checks the options.
func New(opts Options) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = DefaultInitialBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	return &Client{
		opts:  opts,
		log:   opts.Logger.With("server", opts.Server, "node", opts.Node),
		node:  newNode(opts),
		state: newState(),
	}
}

// newNode is the node the client sends: its id, and the addresses it advertises.
func newNode(opts Options) *corev3.Node {
	n := &corev3.Node{Id: opts.Node, UserAgentName: "strait"}
	if len(opts.Addresses) > 0 {
		addrs := make([]*structpb.Value, len(opts.Addresses))
		for i, a := range opts.Addresses {
			addrs[i] = structpb.NewStringValue(a)
		}
		n.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			xds.AddressesMetadataKey: structpb.NewListValue(&structpb.ListValue{Values: addrs}),
		}}
	}
	return n
}

// Name names the runner in logs.
func (c *Client) Name() string { return "xds-client" }

// Start keeps a stream to the control plane open until ctx ends, reconnecting with backoff,
// and returns nil then. It fails at once on invalid options. Call it once.
func (c *Client) Start(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		received, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // ctx ended the session: Start returns nil then, as documented
		}
		if received {
			attempt = 0
		}
		wait := c.backoff(attempt)
		c.log.Warn("disconnected from xds server", "error", err, "retry_in", wait)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

func (c *Client) check() error {
	switch {
	case c.opts.Server == "":
		return errors.New("xds client: no server address")
	case c.opts.Node == "":
		return errors.New("xds client: no node id")
	case c.opts.Apply == nil:
		return errors.New("xds client: no Apply function")
	case c.opts.Credentials == nil && !local(c.opts.Server):
		return fmt.Errorf("xds client: %s is neither a loopback address nor a unix socket and needs Credentials", c.opts.Server)
	}
	return nil
}

// local reports whether a plaintext connection to addr stays on this host. Dialing the
// unspecified address (a control plane's listen address, "0.0.0.0:18000") reaches this host.
func local(addr string) bool {
	if xds.HostOnly(addr) {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// backoff is the wait before the given reconnection attempt (0 for the first): a random
// duration below min(MaxBackoff, InitialBackoff·2^attempt).
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.opts.InitialBackoff
	for range attempt {
		if ceiling >= c.opts.MaxBackoff {
			break
		}
		ceiling *= 2
	}
	return rand.N(min(ceiling, c.opts.MaxBackoff))
}

// session runs one connection's stream: delta xDS, or state of the world once the server
// has shown it lacks delta. It reports whether a response arrived.
func (c *Client) session(ctx context.Context) (bool, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(c.transportCredentials()),
		// The server permits pings every 10s; these detect a control plane that vanished
		// without closing the connection.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseSize)),
	}, c.opts.DialOptions...)
	conn, err := grpc.NewClient(c.opts.Server, opts...)
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	defer func() { _ = conn.Close() }()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if !c.sotw {
		received, err := c.runDelta(ctx, ads)
		if received || status.Code(err) != codes.Unimplemented {
			return received, err
		}
		c.sotw = true
		c.log.Info("xds server does not serve delta ADS; using state of the world from now on", "error", err)
	}
	return c.runSotW(ctx, ads)
}

func (c *Client) transportCredentials() credentials.TransportCredentials {
	if c.opts.Credentials != nil {
		return c.opts.Credentials
	}
	return insecure.NewCredentials()
}

// settle finishes processing a response of type t, whose resources are in the state: it
// forgets what is no longer referenced and applies the configuration if it is complete and
// new. It returns the names to subscribe to and Apply's error.
func (c *Client) settle(t resourceType) ([numTypes]names, error) {
	c.state.received[t] = true
	want := c.state.wanted()
	c.state.prune(want)
	return want, c.commit(want)
}

// commit calls Apply when the configuration is complete and differs from the one last
// applied. A configuration Apply rejected is not offered again: while nothing changes, its
// error is returned without calling Apply.
func (c *Client) commit(want [numTypes]names) error {
	if !c.state.complete(want) {
		return nil
	}
	fp := c.state.fingerprint()
	switch {
	case fp.equal(c.applied):
		c.rejected, c.rejectErr = nil, nil
		return nil
	case fp.equal(c.rejected):
		return c.rejectErr
	}
	res := c.state.configuration()
	if err := c.opts.Apply(res); err != nil {
		c.rejected, c.rejectErr = fp, fmt.Errorf("apply configuration: %w", err)
		return c.rejectErr
	}
	c.applied, c.rejected, c.rejectErr = fp, nil, nil
	c.log.Info("configuration applied", "listeners", len(res.Listeners), "routes", len(res.Routes),
		"clusters", len(res.Clusters), "endpoints", len(res.Endpoints), "secrets", len(res.Secrets))
	return nil
}

// nack logs a rejected response and returns the error detail that rejects it.
func (c *Client) nack(typeURL, version, nonce string, err error) *statuspb.Status {
	c.log.Warn("NACK sent", "type", typeURL, "version", version, "nonce", nonce, "error", err)
	code := status.Code(err)
	if code == codes.Unknown {
		code = codes.InvalidArgument
	}
	return &statuspb.Status{Code: int32(code), Message: err.Error()}
}
