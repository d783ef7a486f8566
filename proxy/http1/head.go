package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Errors reading a message head. A proxy answers ErrHeaderTooLarge with 431 and the others
// with 400 (requests) or 502 (responses).
var (
	// ErrHeaderTooLarge is a head longer than the limit.
	ErrHeaderTooLarge = errors.New("http1: header block too large")
	// ErrAmbiguousFraming is a message whose body length two parsers could read
	// differently (several Content-Length values, Content-Length with Transfer-Encoding, a
	// coding other than chunked, a space before a field's colon): the basis of request
	// smuggling, refused rather than read one way.
	ErrAmbiguousFraming = errors.New("http1: ambiguous message framing")
	// ErrMalformed is a head that is not HTTP/1.x.
	ErrMalformed = errors.New("http1: malformed message")
)

// Framing says how a message's body is delimited.
type Framing uint8

// Body framings.
const (
	// NoBody: the message ends with its head.
	NoBody Framing = iota
	// Length: Content-Length bytes follow.
	Length
	// Chunked: the chunked transfer coding.
	Chunked
	// UntilClose: the body runs until the connection closes (responses only).
	UntilClose
)

// readBlock reads a head up to its empty line into buf (reset first) and returns it. Empty
// lines before the start line are skipped (RFC 9112 2.2). A head longer than limit is
// ErrHeaderTooLarge; a connection that ends within one is io.ErrUnexpectedEOF, and one that
// ends before it starts returns the reader's error (io.EOF for a clean close).
func readBlock(br *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	lineStart, read := 0, 0
	for {
		line, err := br.ReadSlice('\n')
		read += len(line)
		if read > limit {
			return buf, ErrHeaderTooLarge
		}
		buf = append(buf, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(buf) > 0 && !errors.Is(err, io.EOF) {
				return buf, err
			}
			if len(buf) > 0 {
				return buf, io.ErrUnexpectedEOF
			}
			return buf, err
		}
		if l := buf[lineStart:]; len(l) <= 2 && (len(l) == 1 || l[0] == '\r') {
			if lineStart == 0 {
				buf = buf[:0] // an empty line before the start line
				continue
			}
			return buf, nil
		}
		lineStart = len(buf)
	}
}

// parseFields splits the lines of a head after its start line into h.Fields.
func parseFields(h *Header, lines []byte) error {
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		line := lines[:i]
		lines = lines[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fmt.Errorf("%w: obsolete line folding", ErrMalformed)
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: field without a colon", ErrMalformed)
		}
		name := line[:colon]
		if c := name[len(name)-1]; c == ' ' || c == '\t' {
			return fmt.Errorf("%w: whitespace before a field's colon", ErrAmbiguousFraming)
		}
		if !isToken(name) {
			return fmt.Errorf("%w: invalid field name %q", ErrMalformed, name)
		}
		value := trimOWS(line[colon+1:])
		if !validValue(value) {
			return fmt.Errorf("%w: invalid value of %s", ErrMalformed, name)
		}
		h.Fields = append(h.Fields, Field{Name: name, Value: value})
	}
	return nil
}

// framing reads a head's Content-Length and Transfer-Encoding fields under the rules of a
// gateway that refuses rather than guesses: one Content-Length value (repeated identically
// at most), or Transfer-Encoding exactly "chunked" once, never both.
func framing(h *Header) (Framing, int64, error) {
	var length []byte
	lengths, codings := 0, 0
	for _, f := range h.Fields {
		switch {
		case equalFold(f.Name, "Content-Length"):
			if lengths > 0 && !bytes.Equal(f.Value, length) {
				return 0, 0, fmt.Errorf("%w: differing Content-Length values", ErrAmbiguousFraming)
			}
			lengths++
			length = f.Value
		case equalFold(f.Name, "Transfer-Encoding"):
			codings++
			if codings > 1 || !equalFold(f.Value, "chunked") {
				return 0, 0, fmt.Errorf("%w: Transfer-Encoding %q", ErrAmbiguousFraming, f.Value)
			}
		}
	}
	switch {
	case lengths > 0 && codings > 0:
		return 0, 0, fmt.Errorf("%w: Content-Length with Transfer-Encoding", ErrAmbiguousFraming)
	case codings > 0:
		return Chunked, -1, nil
	case lengths > 0:
		n, ok := parseDecimal(length)
		if !ok {
			return 0, 0, fmt.Errorf("%w: Content-Length %q", ErrAmbiguousFraming, length)
		}
		return Length, n, nil
	}
	return NoBody, 0, nil
}

// parseDecimal parses a non-negative decimal of digits only (no sign, no spaces).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseVersion reads "HTTP/1.0" or "HTTP/1.1" and returns the minor version.
func parseVersion(b []byte) (int, bool) {
	if len(b) != 8 || string(b[:7]) != "HTTP/1." || (b[7] != '0' && b[7] != '1') {
		return 0, false
	}
	return int(b[7] - '0'), true
}

// keepAlive reports whether a message lets its connection carry another one.
func keepAlive(h *Header, minor int) bool {
	if minor == 0 {
		return h.HasToken("Connection", "keep-alive")
	}
	return !h.HasToken("Connection", "close")
}
