// Package h2 is Strait's HTTP/2 server (RFC 9113), server side only, built on
// golang.org/x/net/http2's Framer and golang.org/x/net/http2/hpack.
//
// It exists for speed: net/http's HTTP/2 server spends several times the CPU per request
// that a proxy can afford. Here one connection has one reader (the goroutine that called
// ServeConn), one writer goroutine that encodes and coalesces frames from every stream and
// flushes the socket only when nothing else is ready to write (after yielding once, so that
// handlers about to finish share the system call), and one handler goroutine per stream (up
// to four of a busy connection wait for its next stream instead of exiting). Stream structs,
// their header field lists and body buffers are pooled: a stream costs the server two
// allocations (the Framer's HEADERS frame, the goroutine start when no worker waits).
//
// What is done:
//   - prior-knowledge h2c (the preface may already sit in a bufio.Reader) and TLS with ALPN
//     "h2": ServeConn does not care which;
//   - the SETTINGS exchange (ours: MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE,
//     MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE; the client's honored, HEADER_TABLE_SIZE and a
//     changed INITIAL_WINDOW_SIZE included), PING, GOAWAY, RST_STREAM both ways, PRIORITY
//     accepted and ignored, unknown frames ignored;
//   - flow control both ways, connection and stream level: the request body's credit goes
//     back as the handler reads it; the response waits for the client's credit;
//   - HEADERS + CONTINUATION with a bounded header list (an oversized list is answered 431)
//     and a bound on the encoded block (a CONTINUATION flood ends the connection);
//   - request validation (pseudo-header fields first and once, lowercase names, no
//     connection-specific fields, TE only "trailers", content-length against the DATA
//     received), request trailers, response trailers;
//   - stream states and the error each violation calls for (PROTOCOL_ERROR,
//     FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM beyond the stream
//     limit);
//   - rapid-reset protection (CVE-2023-44487): client resets of streams still being served
//     are rate-limited by a token bucket; past it the connection gets GOAWAY
//     ENHANCE_YOUR_CALM;
//   - informational heads (Stream.WriteInterim: 103 Early Hints), and 100 Continue for a
//     request that asked for it (Expect: 100-continue) once its handler waits for the body;
//   - a bound on the control frames (SETTINGS ACK, PING ACK, RST_STREAM) queued for a client
//     that does not read them: GOAWAY ENHANCE_YOUR_CALM;
//   - graceful shutdown (Server.Shutdown: GOAWAY with the last stream id, open streams
//     finish, bounded by the caller's context) and an idle timeout, which also covers a
//     client that never sends its preface; a connection error's GOAWAY is written and the
//     socket half-closed before it closes, so that a reset does not overtake it;
//   - (*Stream).ServeHTTP, which serves a stream with a plain net/http Handler
//     (httputil.ReverseProxy, gRPC through it): every stream of a connection is served by
//     this server, whichever handler it ends up in.
//
// What is not done: server push (never sent; SETTINGS_ENABLE_PUSH is irrelevant to a
// server), extended CONNECT (RFC 8441; :protocol is refused), the h2c Upgrade from HTTP/1.1
// (prior knowledge only), priorities (frames are parsed and ignored; streams are written in
// the order they become ready), padding of the frames this server sends, and validation of the response fields a Handler passes to WriteHead (the adapter
// drops invalid values and connection-specific fields; a raw Handler must send lowercase,
// valid fields). Closed streams are not remembered: DATA still in flight for a stream the
// server ended early is answered with RST_STREAM STREAM_CLOSED, and HEADERS on any stream id
// below the highest one seen is a STREAM_CLOSED connection error (PROTOCOL_ERROR would be
// the exact answer for an id that was skipped, never opened). The adapter gives no
// Content-Length to a body it did not know the length of, and has no Hijacker or Pusher.
package h2
