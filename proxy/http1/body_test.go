package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestCopyBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		from    Framing
		n       int64
		to      Framing
		want    string // decoded, when to is Chunked
		wantErr error
		rest    string // what src still holds after the body
	}{
		{name: "length", in: "helloGET", from: Length, n: 5, to: Length, want: "hello", rest: "GET"},
		{name: "length to chunked", in: "hello", from: Length, n: 5, to: Chunked, want: "hello"},
		{name: "length cut short", in: "hel", from: Length, n: 5, to: Length, wantErr: io.ErrUnexpectedEOF},
		{
			name: "chunked with extensions and trailers", from: Chunked, to: Chunked,
			in:   "3;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: v\r\n\r\nNEXT",
			want: "abc0123456789", rest: "NEXT",
		},
		{name: "chunked to raw", in: "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", from: Chunked, to: UntilClose, want: "abcde"},
		{name: "chunk longer than its size", in: "3\r\nabcd\r\n0\r\n\r\n", from: Chunked, to: Chunked, wantErr: ErrMalformed},
		{name: "chunk size not hex", in: "x\r\nabc\r\n0\r\n\r\n", from: Chunked, to: Chunked, wantErr: ErrMalformed},
		{name: "chunk size with a sign", in: "+3\r\nabc\r\n0\r\n\r\n", from: Chunked, to: Chunked, wantErr: ErrMalformed},
		{name: "chunk size overflowing", in: "10000000000000000\r\n", from: Chunked, to: Chunked, wantErr: ErrMalformed},
		{name: "chunked cut short", in: "3\r\nab", from: Chunked, to: Chunked, wantErr: io.ErrUnexpectedEOF},
		{name: "no last chunk", in: "3\r\nabc\r\n", from: Chunked, to: Chunked, wantErr: io.ErrUnexpectedEOF},
		{name: "until close to chunked", in: "abcdef", from: UntilClose, to: Chunked, want: "abcdef"},
		{name: "until close", in: "abcdef", from: UntilClose, to: UntilClose, want: "abcdef"},
		{name: "no body", in: "GET", from: NoBody, to: NoBody, want: "", rest: "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
			var out strings.Builder
			dst := bufio.NewWriterSize(&out, 16)
			err := CopyBody(dst, src, tc.from, tc.n, tc.to)
			_ = dst.Flush()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if tc.to == Chunked {
				// Chunk boundaries follow the reads; what counts is a well-formed body.
				decoded, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(got)))
				if err != nil {
					t.Fatalf("copied %q: %v", got, err)
				}
				got = string(decoded)
			}
			if got != tc.want {
				t.Errorf("copied %q, want %q", got, tc.want)
			}
			rest, _ := io.ReadAll(src)
			if string(rest) != tc.rest {
				t.Errorf("left %q, want %q", rest, tc.rest)
			}
		})
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestCopyBodyWriteError tells a failure to write apart from a failure to read.
func TestCopyBodyWriteError(t *testing.T) {
	src := bufio.NewReader(strings.NewReader(strings.Repeat("a", 100)))
	err := CopyBody(bufio.NewWriterSize(failingWriter{}, 16), src, Length, 100, Length)
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a WriteError", err)
	}
}

// FuzzChunked decodes arbitrary bytes as a chunked body: what it accepts, net/http's
// chunked reader decodes to the same bytes and ends at the same place, so that the body
// and what follows it are read the same way by both.
func FuzzChunked(f *testing.F) {
	f.Add("3\r\nabc\r\n0\r\n\r\nGET")
	f.Add("3;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: v\r\n\r\n")
	f.Add("1\nx\n0\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		src := bufio.NewReaderSize(strings.NewReader(in), 16)
		var out strings.Builder
		dst := bufio.NewWriter(&out)
		if err := CopyBody(dst, src, Chunked, 0, UntilClose); err != nil {
			return
		}
		_ = dst.Flush()
		rest, _ := io.ReadAll(src)
		std := bufio.NewReader(strings.NewReader(in))
		decoded, err := io.ReadAll(httputil.NewChunkedReader(std))
		if err != nil {
			return // net/http is stricter somewhere: refusing is never ambiguous
		}
		if string(decoded) != out.String() {
			t.Fatalf("%q: decoded %q, net/http %q", in, out.String(), decoded)
		}
		// net/http's chunked reader stops after the last chunk's size line; the trailer
		// section is its caller's to read.
		stdRest, _ := io.ReadAll(std)
		if !strings.HasSuffix(string(stdRest), string(rest)) {
			t.Fatalf("%q: left %q, net/http left %q", in, rest, stdRest)
		}
	})
}
