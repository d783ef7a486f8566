package h2

import (
	"strconv"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// blockKind says what a header block being decoded is for.
type blockKind uint8

const (
	blockRequest  blockKind = iota // a new stream's request head
	blockTrailers                  // an open stream's trailers
	blockDiscard                   // decoded only to keep HPACK in step
)

// headerBlock is the state of the header block being decoded (HEADERS and its
// CONTINUATION frames).
type headerBlock struct {
	kind      blockKind
	s         *Stream // blockRequest, blockTrailers
	id        uint32
	end       bool // END_STREAM
	refuse    http2.ErrCode
	encoded   int    // bytes of header block so far
	frames    int    // CONTINUATION frames so far
	size      uint32 // decoded header list size
	tooLarge  bool
	malformed bool
	regular   bool  // a regular field was seen: no pseudo-header field may follow
	pseudo    uint8 // pseudo-header fields seen
}

const (
	pseudoMethod = 1 << iota
	pseudoScheme
	pseudoAuthority
	pseudoPath
)

// maxContinuations bounds the CONTINUATION frames of one header block: a flood of small ones
// costs the server more than the client.
const maxContinuations = 256

func (c *serverConn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	c.blk = headerBlock{id: id, end: f.StreamEnded()}
	b := &c.blk
	c.mu.Lock()
	s := c.streams[id]
	switch {
	case s != nil:
		// The trailers are decoded into the reader's own list: the stream may be reset,
		// and reused, before the block ends.
		b.kind = blockTrailers
		c.trailerBuf = clearFields(c.trailerBuf)
		if s.recvClosed {
			b.kind, b.refuse = blockDiscard, http2.ErrCodeStreamClosed
		} else if !b.end {
			b.kind, b.refuse = blockDiscard, http2.ErrCodeProtocol
		}
	case id <= c.maxID:
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	case id%2 == 0:
		c.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	default:
		c.maxID = id
		b.kind = blockRequest
		switch {
		case c.goneAway:
			b.kind = blockDiscard // beyond the last stream GOAWAY named: ignored
		case f.HasPriority() && f.Priority.StreamDep == id:
			b.kind, b.refuse = blockDiscard, http2.ErrCodeProtocol
		case len(c.streams) >= int(c.cfg.MaxConcurrentStreams) || c.handlers >= 2*int(c.cfg.MaxConcurrentStreams):
			// Handlers of streams the client reset still count, up to a point.
			b.kind, b.refuse = blockDiscard, http2.ErrCodeRefusedStream
		default:
			b.s = newStream(c, id)
		}
	}
	c.mu.Unlock()
	return c.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *serverConn) onContinuation(f *http2.ContinuationFrame) error {
	c.blk.frames++
	if c.blk.frames > maxContinuations {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return c.decodeFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *serverConn) decodeFragment(frag []byte, end bool) error {
	b := &c.blk
	b.encoded += len(frag)
	if b.encoded > 2*int(c.cfg.MaxHeaderListSize) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if !end {
		return nil
	}
	if err := c.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	return c.endBlock()
}

// emit receives each decoded header field.
func (c *serverConn) emit(hf hpack.HeaderField) {
	b := &c.blk
	b.size += uint32(len(hf.Name) + len(hf.Value) + 32)
	if b.size > c.cfg.MaxHeaderListSize {
		b.tooLarge = true
	}
	if b.kind == blockDiscard || b.malformed || b.tooLarge {
		return
	}
	s := b.s // nil for trailers
	name := hf.Name
	if name != "" && name[0] == ':' {
		if b.regular || s == nil {
			b.malformed = true
			return
		}
		var bit uint8
		switch name {
		case ":method":
			bit, s.method = pseudoMethod, hf.Value
		case ":scheme":
			bit, s.scheme = pseudoScheme, hf.Value
		case ":authority":
			bit, s.authority = pseudoAuthority, hf.Value
		case ":path":
			bit, s.path = pseudoPath, hf.Value
		default: // :status, :protocol (no extended CONNECT), anything else
			b.malformed = true
			return
		}
		if b.pseudo&bit != 0 {
			b.malformed = true
		}
		b.pseudo |= bit
		return
	}
	b.regular = true
	if !validName(name) || !httpguts.ValidHeaderFieldValue(hf.Value) {
		b.malformed = true
		return
	}
	if connectionSpecific(name) {
		b.malformed = true
		return
	}
	switch name {
	case "te":
		if hf.Value != "trailers" {
			b.malformed = true
			return
		}
	case "content-length":
		if b.kind == blockRequest {
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || (s.contentLength >= 0 && s.contentLength != n) {
				b.malformed = true
				return
			}
			s.contentLength = n
		}
	}
	if b.kind == blockTrailers {
		c.trailerBuf = append(c.trailerBuf, Field{Name: name, Value: hf.Value})
	} else {
		s.fields = append(s.fields, Field{Name: name, Value: hf.Value})
	}
}

// validName reports whether name is a lowercase field name token.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		ch := name[i]
		if ch >= 'A' && ch <= 'Z' || !httpguts.IsTokenRune(rune(ch)) {
			return false
		}
	}
	return true
}

// endBlock acts on a complete header block.
func (c *serverConn) endBlock() error {
	b := &c.blk
	c.mu.Lock()
	defer c.mu.Unlock()
	switch b.kind {
	case blockDiscard:
		if b.refuse != 0 {
			c.streamErrorLocked(b.id, b.refuse)
		}
	case blockTrailers:
		s := c.streams[b.id]
		if s == nil || s.recvClosed {
			return nil // reset meanwhile
		}
		if b.malformed || b.tooLarge {
			c.streamErrorLocked(s.id, http2.ErrCodeProtocol)
			return nil
		}
		s.trailers = append(s.trailers, c.trailerBuf...)
		c.endRequestLocked(s)
	case blockRequest:
		s := b.s
		b.s = nil
		if c.closed {
			c.releaseLocked(s)
			return nil
		}
		if !b.tooLarge && (b.malformed || !validPseudo(s, b.pseudo)) {
			c.releaseLocked(s)
			c.streamErrorLocked(b.id, http2.ErrCodeProtocol)
			return nil
		}
		s.recvClosed = b.end
		if b.end && s.contentLength > 0 {
			c.releaseLocked(s)
			c.streamErrorLocked(b.id, http2.ErrCodeProtocol)
			return nil
		}
		c.streams[s.id] = s
		s.refs = 2 // the stream table's and the handler's
		c.handlers++
		s.h = c.h
		if b.tooLarge {
			s.h = tooLarge
		}
		c.startHandlerLocked(s)
	}
	return nil
}

// validPseudo checks the pseudo-header fields a request must and must not have.
func validPseudo(s *Stream, seen uint8) bool {
	if seen&pseudoMethod == 0 {
		return false
	}
	if s.method == "CONNECT" {
		return seen == pseudoMethod|pseudoAuthority
	}
	return seen&(pseudoScheme|pseudoPath) == pseudoScheme|pseudoPath && s.path != ""
}

// tooLarge answers a request whose header list is over the limit.
var tooLarge = HandlerFunc(func(s *Stream) {
	_ = s.WriteHead(431, nil)
})

// connectionSpecific reports whether a lowercase field name is one of HTTP/1.1's
// connection-specific fields, which HTTP/2 forbids (RFC 9113 8.2.2; TE is apart).
func connectionSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}
