package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
)

// errAmbiguousFraming is a request whose body length two HTTP parsers could read
// differently: the basis of request smuggling.
var errAmbiguousFraming = errors.New("ambiguous request framing")

// framingConn checks every HTTP/1.x request on a connection before net/http reads it, and
// refuses one whose framing is ambiguous: both Content-Length and Transfer-Encoding, several
// Content-Length values, a Transfer-Encoding other than chunked, or a space before a header's
// colon. net/http would pick one reading (RFC 9112 lets it); a gateway refuses instead, so
// that no server behind it can read the same bytes another way.
//
// It follows the bodies (by length, or chunk by chunk) to find where each request starts,
// and stops checking once the connection is upgraded or speaks HTTP/2.
type framingConn struct {
	net.Conn
	state  framingState
	header bytes.Buffer // the header block being read, held back until checked
	out    []byte       // checked bytes not yet read by net/http
	remain int64        // bytes left of the current body or chunk
	raw    []byte
}

type framingState int

const (
	stateHeader framingState = iota
	stateBody
	stateChunkSize
	stateChunkData
	stateTrailer
	stateOff
)

// maxHeaderBlock bounds a header block held for checking; net/http refuses larger ones too.
const maxHeaderBlock = maxHeaderBytes + 4096

func newFramingConn(c net.Conn) *framingConn {
	return &framingConn{Conn: c, raw: make([]byte, 16<<10)}
}

func (c *framingConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		n, err := c.Conn.Read(c.raw)
		if n > 0 {
			if ferr := c.scan(c.raw[:n]); ferr != nil {
				_, _ = io.WriteString(c.Conn, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				return 0, ferr
			}
		}
		if err != nil {
			if len(c.out) > 0 {
				break
			}
			if c.header.Len() > 0 {
				// A partial header block: let net/http see it and answer as it does.
				c.out, c.header = append(c.out, c.header.Bytes()...), bytes.Buffer{}
				break
			}
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// scan moves b through the state machine, appending checked bytes to c.out.
func (c *framingConn) scan(b []byte) error {
	for len(b) > 0 {
		switch c.state {
		case stateOff:
			c.out = append(c.out, b...)
			return nil
		case stateBody, stateChunkData:
			n := min(int64(len(b)), c.remain)
			c.out = append(c.out, b[:n]...)
			b, c.remain = b[n:], c.remain-n
			if c.remain == 0 {
				if c.state == stateBody {
					c.state = stateHeader
				} else {
					c.state = stateChunkSize
				}
			}
		case stateHeader, stateChunkSize, stateTrailer:
			// Line-oriented states: gather until the block (or line) ends.
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.header.Write(b)
				if c.header.Len() > maxHeaderBlock {
					c.state = stateOff // net/http refuses it with 431
					c.out = append(c.out, c.header.Bytes()...)
					c.header.Reset()
				}
				return nil
			}
			c.header.Write(b[:i+1])
			b = b[i+1:]
			if err := c.line(); err != nil {
				return err
			}
		}
	}
	return nil
}

// line handles a complete line in a line-oriented state.
func (c *framingConn) line() error {
	buf := c.header.Bytes()
	switch c.state {
	case stateChunkSize:
		c.flush()
		size := bytes.TrimSpace(buf)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			c.state = stateOff
			return nil //nolint:nilerr // malformed: net/http refuses it itself
		}
		if n == 0 {
			c.state = stateTrailer
			return nil
		}
		c.remain, c.state = n+2, stateChunkData // the data and its CRLF
		return nil
	case stateTrailer:
		blank := len(bytes.TrimRight(buf, "\r\n")) == 0
		c.flush()
		if blank {
			c.state = stateHeader
		}
		return nil
	}
	// stateHeader: the block ends with an empty line; a leading empty line is allowed.
	if !bytes.HasSuffix(buf, []byte("\n\r\n")) && !bytes.HasSuffix(buf, []byte("\n\n")) {
		if len(bytes.TrimRight(buf, "\r\n")) == 0 {
			c.flush()
		}
		return nil
	}
	return c.headerBlock()
}

// headerBlock checks a complete request header block and sets how its body is read.
func (c *framingConn) headerBlock() error {
	block := c.header.Bytes()
	lines := bytes.Split(bytes.TrimRight(block, "\r\n"), []byte("\n"))
	if len(lines) > 0 && bytes.HasPrefix(lines[0], []byte("PRI * HTTP/2")) {
		c.state = stateOff
		c.flush()
		return nil
	}
	var contentLength []byte
	lengths, encodings := 0, 0
	chunked, upgrade := false, false
	for _, l := range lines[1:] {
		l = bytes.TrimRight(l, "\r")
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			continue
		}
		name := l[:colon]
		if name[len(name)-1] == ' ' || name[len(name)-1] == '\t' {
			return errAmbiguousFraming
		}
		value := bytes.TrimSpace(l[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if lengths > 0 && !bytes.Equal(value, contentLength) {
				return errAmbiguousFraming
			}
			lengths++
			contentLength = value
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
			if !bytes.EqualFold(value, []byte("chunked")) || encodings > 1 {
				return errAmbiguousFraming
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	if lengths > 0 && encodings > 0 {
		return errAmbiguousFraming
	}
	c.flush()
	switch {
	case upgrade:
		// After a 101 the bytes are another protocol's; h2c upgrades are the same.
		c.state = stateOff
	case chunked:
		c.state = stateChunkSize
	case lengths > 0:
		n, err := strconv.ParseInt(string(contentLength), 10, 64)
		if err != nil || n < 0 {
			c.state = stateOff
			return nil //nolint:nilerr // malformed: net/http refuses it itself
		}
		if n > 0 {
			c.remain, c.state = n, stateBody
		}
	}
	return nil
}

// flush releases the held bytes to net/http.
func (c *framingConn) flush() {
	c.out = append(c.out, c.header.Bytes()...)
	c.header.Reset()
}

// tlsFramingConn is a framingConn over TLS. net/http recognizes TLS only on a *tls.Conn, so
// the TLS state travels in the connection's context instead (see tlsStateKey).
type tlsFramingConn struct {
	*framingConn
	tls *tls.Conn
}

// tlsStateKey holds a connection's *tls.ConnectionState in its context.
type tlsStateKey struct{}

// connContext puts the TLS state of a checked TLS connection in its context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tlsFramingConn); ok {
		st := tc.tls.ConnectionState()
		return context.WithValue(ctx, tlsStateKey{}, &st)
	}
	return ctx
}
