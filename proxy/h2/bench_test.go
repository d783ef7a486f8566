package h2

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-gw/strait/proxy/internal/cputime"
)

// answer is the fixed 36-byte body both servers send.
var answer = []byte("0123456789abcdefghijklmnopqrstuvwxyz")

// BenchmarkServer serves b.N GET streams, 10 in flight on one h2c connection as
// h2load -m10 does, from a frame-level client that costs little itself, with this package
// and with net/http's HTTP/2 server, each answering the same 36 bytes. allocs/op and
// cpu-µs/stream count the client too: one allocation (the response's HEADERS frame) and its
// share of the CPU are the client's in both.
func BenchmarkServer(b *testing.B) {
	b.Run("strait", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		srv := &Server{Handler: HandlerFunc(func(s *Stream) {
			_ = s.WriteHead(200, []Field{{"content-type", "text/plain"}, {"content-length", "36"}})
			_, _ = s.Write(answer)
		})}
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _ = srv.ServeConn(context.Background(), nc, nil) }()
			}
		}()
		benchClient(b, ln.Addr().String())
	})
	b.Run("net-http", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		hs := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{"text/plain"}
			w.Header()["Content-Length"] = []string{"36"}
			_, _ = w.Write(answer)
		})}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		benchClient(b, ln.Addr().String())
	})
}

// benchClient runs b.N streams against addr, 10 at a time.
func benchClient(b *testing.B, addr string) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Minute))
	bw := bufio.NewWriterSize(nc, 32<<10)
	fr := http2.NewFramer(bw, bufio.NewReaderSize(nc, 32<<10))
	fr.SetReuseFrames()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	_, _ = io.WriteString(bw, http2.ClientPreface)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	_ = fr.WriteWindowUpdate(0, 1<<30)
	_ = bw.Flush()
	const inFlight = 10
	sent, done, open := 0, 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cputime.Process()
	for done < b.N {
		wrote := false
		for open < inFlight && sent < b.N {
			hbuf.Reset()
			for _, f := range [...]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "bench"}, {Name: ":path", Value: "/"}, {Name: "user-agent", Value: "bench"}} {
				_ = enc.WriteField(f)
			}
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*sent + 1), BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
				b.Fatal(err)
			}
			sent++
			open++
			wrote = true
		}
		if wrote {
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
				_ = bw.Flush()
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				done++
				open--
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				done++
				open--
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			b.Fatalf("%v", f)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "streams/s")
	// The process's CPU time, the client's included (the same client for both servers).
	if cpu > 0 {
		b.ReportMetric(float64(cputime.Process()-cpu)/1e3/float64(b.N), "cpu-µs/stream")
	}
}
