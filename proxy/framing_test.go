package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// byteConn is a connection that reads from r in small pieces and records what is written.
type byteConn struct {
	net.Conn
	r       io.Reader
	written bytes.Buffer
}

func (c *byteConn) Read(p []byte) (int, error)  { return c.r.Read(p[:min(len(p), 7)]) }
func (c *byteConn) Write(p []byte) (int, error) { return c.written.Write(p) }

func TestFramingConn(t *testing.T) {
	chunkedWithLookalike := "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"1e\r\nContent-Length: 5\r\n\r\nabcdefghi\r\n0\r\n\r\n"
	for _, tc := range []struct {
		name    string
		in      string
		refused bool
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"pipelined with bodies", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"chunked body that looks like headers", chunkedWithLookalike + "GET /c HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"chunk extensions and trailers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: v\r\n\r\n", false},
		{"same content-length twice", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", false},
		{"websocket upgrade then frames", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"content-length and chunked", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"smuggling in the second request", chunkedWithLookalike + "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", true},
		{"differing content-lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", true},
		{"transfer-encoding not chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true},
		{"space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 1\r\n\r\na", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := &byteConn{r: strings.NewReader(tc.in)}
			got, err := io.ReadAll(newFramingConn(bc))
			if tc.refused {
				if !errors.Is(err, errAmbiguousFraming) {
					t.Fatalf("err = %v, want the request refused", err)
				}
				if !strings.HasPrefix(bc.written.String(), "HTTP/1.1 400") {
					t.Errorf("answer %q, want 400", bc.written.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.in {
				t.Errorf("bytes changed on the way:\n got %q\nwant %q", got, tc.in)
			}
		})
	}
}

// FuzzFramingConn feeds arbitrary bytes through the framing check: it never panics, and
// what it does not refuse reaches net/http unchanged.
func FuzzFramingConn(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.1\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := io.ReadAll(newFramingConn(&byteConn{r: strings.NewReader(in)}))
		if errors.Is(err, errAmbiguousFraming) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != in {
			t.Fatalf("bytes changed: %q -> %q", in, got)
		}
	})
}
