package http1

import (
	"bufio"
	"bytes"
	"fmt"
)

// Request is a parsed request head. It is reused from one request to the next on a
// connection: its slices are valid until the next ReadRequest.
type Request struct {
	Header
	// Method is interned for the common methods.
	Method string
	// Target is the request target as sent: "/path?query" in origin form.
	Target []byte
	// Minor is the HTTP/1.x minor version.
	Minor int
	// Host is the Host field's value; empty only for an HTTP/1.0 request without one.
	Host []byte
	// Body and ContentLength say how the body is framed (NoBody, Length or Chunked).
	Body          Framing
	ContentLength int64
	// KeepAlive: the client lets the connection carry another request.
	KeepAlive bool
	// Upgrade and Expect report the fields that ask for more than one exchange on the
	// connection: a protocol switch, or an interim 100 Continue.
	Upgrade, Expect bool

	rawLen int
}

// Raw returns the head as it was read, for another parser to read again.
func (r *Request) Raw() []byte { return r.buf[:r.rawLen] }

// ReadRequest reads the next request head from br, at most limit bytes. An error other than
// the reader's own (io.EOF before any byte) means the request is refused.
func ReadRequest(br *bufio.Reader, req *Request, limit int) error {
	req.reset()
	block, err := readBlock(br, req.buf, limit)
	req.buf, req.rawLen = block, len(block)
	if err != nil {
		return err
	}
	i := bytes.IndexByte(block, '\n')
	line := bytes.TrimSuffix(block[:i], []byte("\r"))
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return fmt.Errorf("%w: request line %q", ErrMalformed, line)
	}
	method, target := line[:sp1], line[sp1+1:sp2]
	minor, ok := parseVersion(line[sp2+1:])
	if !ok || !isToken(method) || bytes.ContainsAny(target, " \t") || !validValue(target) {
		return fmt.Errorf("%w: request line %q", ErrMalformed, line)
	}
	req.Method, req.Target, req.Minor = methodString(method), target, minor
	if err := parseFields(&req.Header, block[i+1:]); err != nil {
		return err
	}
	if req.Body, req.ContentLength, err = framing(&req.Header); err != nil {
		return err
	}
	hosts := 0
	req.Host, req.Upgrade, req.Expect = nil, false, false
	for _, f := range req.Fields {
		switch {
		case equalFold(f.Name, "Host"):
			hosts++
			req.Host = f.Value
		case equalFold(f.Name, "Upgrade"):
			req.Upgrade = true
		case equalFold(f.Name, "Expect"):
			req.Expect = true
		}
	}
	if hosts > 1 || (hosts == 0 && minor == 1) {
		return fmt.Errorf("%w: %d Host fields", ErrMalformed, hosts)
	}
	req.KeepAlive = keepAlive(&req.Header, minor)
	return nil
}

// Response is a parsed response head, reused like Request.
type Response struct {
	Header
	// Status is the three-digit status code; Reason the phrase after it.
	Status int
	Reason []byte
	// Minor is the HTTP/1.x minor version.
	Minor int
	// Body and ContentLength say how the body is framed; ContentLength is -1 unless Length.
	Body          Framing
	ContentLength int64
	// KeepAlive: the server lets the connection carry another request.
	KeepAlive bool
}

// ReadResponse reads the next response head from br, at most limit bytes. head says the
// request was HEAD, whose response has no body whatever its fields say (RFC 9112 6.3).
func ReadResponse(br *bufio.Reader, resp *Response, head bool, limit int) error {
	resp.reset()
	block, err := readBlock(br, resp.buf, limit)
	resp.buf = block
	if err != nil {
		return err
	}
	i := bytes.IndexByte(block, '\n')
	line := bytes.TrimSuffix(block[:i], []byte("\r"))
	if len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return fmt.Errorf("%w: status line %q", ErrMalformed, line)
	}
	minor, ok := parseVersion(line[:8])
	code, okCode := parseDecimal(line[9:12])
	if !ok || !okCode || code < 100 {
		return fmt.Errorf("%w: status line %q", ErrMalformed, line)
	}
	resp.Minor, resp.Status = minor, int(code)
	resp.Reason = nil
	if len(line) > 13 {
		resp.Reason = line[13:]
	}
	if err := parseFields(&resp.Header, block[i+1:]); err != nil {
		return err
	}
	resp.KeepAlive = keepAlive(&resp.Header, minor)
	f, n, err := framing(&resp.Header)
	if err != nil {
		return err
	}
	switch {
	case head || resp.Status < 200 || resp.Status == 204 || resp.Status == 304:
		resp.Body, resp.ContentLength = NoBody, -1
		if f == Length && (head || resp.Status == 304) {
			resp.ContentLength = n // describes the body a GET would have had
		}
	case f == NoBody:
		resp.Body, resp.ContentLength = UntilClose, -1
		resp.KeepAlive = false
	default:
		resp.Body, resp.ContentLength = f, n
	}
	return nil
}
