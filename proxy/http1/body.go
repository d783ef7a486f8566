package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxTrailer bounds the trailer section of a chunked body, which is read and dropped.
const maxTrailer = 64 << 10

// WriteError is a failure to write a body to its destination, told apart from a failure
// to read it: the two ends of a proxied body belong to different peers.
type WriteError struct{ Err error }

// Error describes the failure.
func (e *WriteError) Error() string { return "write: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *WriteError) Unwrap() error { return e.Err }

// CopyBody copies a body framed as in (with n bytes for Length) from src to dst framed as
// out: Length (in must be Length too), Chunked, or UntilClose (the bytes as they are, for a
// connection that closes after them). It does not flush dst. A read error is returned as
// it is (io.ErrUnexpectedEOF for a body cut short), a write error as a *WriteError.
func CopyBody(dst *bufio.Writer, src *bufio.Reader, in Framing, n int64, out Framing) error {
	var err error
	switch in {
	case NoBody:
	case Length:
		err = copyN(dst, src, n, out == Chunked)
	case Chunked:
		err = copyChunked(dst, src, out == Chunked)
	case UntilClose:
		err = copyUntilEOF(dst, src, out == Chunked)
	}
	if err == nil && out == Chunked && in != NoBody {
		if _, werr := dst.WriteString("0\r\n\r\n"); werr != nil {
			return &WriteError{Err: werr}
		}
	}
	return err
}

// copyN copies n bytes without an intermediate buffer of its own.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, chunk bool) error {
	for n > 0 {
		if err := fill(dst, src); err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		b, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if err := write(dst, b, chunk); err != nil {
			return err
		}
		_, _ = src.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// copyUntilEOF copies what src holds until it ends.
func copyUntilEOF(dst *bufio.Writer, src *bufio.Reader, chunk bool) error {
	for {
		if err := fill(dst, src); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		b, _ := src.Peek(src.Buffered())
		if err := write(dst, b, chunk); err != nil {
			return err
		}
		_, _ = src.Discard(len(b))
	}
}

// write writes b, as one chunk when chunk is set.
func write(dst *bufio.Writer, b []byte, chunk bool) error {
	if chunk {
		writeHex(dst, len(b))
		_, _ = dst.WriteString("\r\n")
	}
	_, _ = dst.Write(b)
	var err error
	if chunk {
		_, err = dst.WriteString("\r\n")
	} else {
		_, err = dst.Write(nil)
	}
	if err != nil {
		// bufio.Writer keeps its first error and reports it on every later write.
		return &WriteError{Err: err}
	}
	return nil
}

// writeHex writes n in hexadecimal byte by byte: a digit array passed to dst.Write would
// escape to the heap.
func writeHex(dst *bufio.Writer, n int) {
	shift := 0
	for n>>shift >= 16 {
		shift += 4
	}
	for ; shift >= 0; shift -= 4 {
		_ = dst.WriteByte("0123456789abcdef"[n>>shift&0xf])
	}
}

// fill waits for more of the body when src holds none of it, flushing dst first: what came
// so far goes on at once instead of waiting for the rest (a stream of events, a slow
// upload).
func fill(dst *bufio.Writer, src *bufio.Reader) error {
	if src.Buffered() > 0 {
		return nil
	}
	if err := dst.Flush(); err != nil {
		return &WriteError{Err: err}
	}
	_, err := src.Peek(1)
	return err
}

// copyChunked decodes a chunked body, writing the data as chunks again (rechunk) or as they
// are. Chunk extensions and trailer fields are dropped.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, rechunk bool) error {
	for {
		if err := fill(dst, src); err != nil {
			return chunkError(err)
		}
		line, err := src.ReadSlice('\n')
		if err != nil {
			return chunkError(err)
		}
		size, err := chunkSize(line)
		if err != nil {
			return err
		}
		if size == 0 {
			return skipTrailer(src)
		}
		if err := copyN(dst, src, size, rechunk); err != nil {
			return err
		}
		line, err = src.ReadSlice('\n')
		if err != nil {
			return chunkError(err)
		}
		if len(line) > 2 || (len(line) == 2 && line[0] != '\r') {
			return fmt.Errorf("%w: chunk data longer than its size", ErrMalformed)
		}
	}
}

func chunkError(err error) error {
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%w: chunk size line too long", ErrMalformed)
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	}
	return err
}

// chunkSize parses a chunk size line: hex digits, then optional extensions after ";".
func chunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, fmt.Errorf("%w: chunk size too large", ErrMalformed)
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, fmt.Errorf("%w: chunk size %q", ErrMalformed, line)
	}
	r := trimOWS(line[i:])
	switch {
	case len(r) > 0 && r[0] == ';':
		if !validValue(trimCRLF(r)) {
			return 0, fmt.Errorf("%w: chunk extension", ErrMalformed)
		}
	case string(r) == "\r\n" || string(r) == "\n":
	default:
		return 0, fmt.Errorf("%w: chunk size %q", ErrMalformed, line)
	}
	return n, nil
}

func trimCRLF(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return b
}

// skipTrailer reads the trailer section up to its empty line.
func skipTrailer(src *bufio.Reader) error {
	read := 0
	for {
		line, err := src.ReadSlice('\n')
		read += len(line)
		if read > maxTrailer {
			return fmt.Errorf("%w: trailer section too large", ErrMalformed)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return chunkError(err)
		}
		if len(trimCRLF(line)) == 0 {
			return nil
		}
	}
}
