package proxy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-gw/strait/proxy/internal/cputime"
)

// BenchmarkH2C sends GET requests through the proxy over one h2c connection with 16 streams
// in flight, as h2load -m 16 does, to the same minimal upstream as BenchmarkHTTP1: the
// routes the HTTP/1.1 fast path serves, and a route with a retry policy, which only
// net/http's ReverseProxy path serves. The client is a raw frame loop that allocates next
// to nothing per request, so allocs/op are the proxy's. cpu-µs/op is the process's CPU time
// per request (client, proxy and upstream), which a busy machine disturbs less than ns/op.
func BenchmarkH2C(b *testing.B) {
	for _, bc := range benchRoutes {
		b.Run(bc.name, func(b *testing.B) {
			port, _ := routeEnv(b, bc.rule, benchUpstream(b))
			c := dialH2C(b, port)
			defer c.close()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cputime.Process()
			if err := c.run(b.N, 16); err != nil {
				b.Fatal(err)
			}
			// On a machine shared with other work the CPU time a request costs (client,
			// proxy and upstream together) is steadier than the time it takes.
			if cpu > 0 {
				b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N)/1e3, "cpu-µs/op")
			}
		})
	}
}

// h2cLoad is a minimal HTTP/2 load client on one connection: it keeps a number of GET
// streams in flight and counts the ones that end with a 200.
type h2cLoad struct {
	conn  net.Conn
	bw    *bufio.Writer
	fr    *http2.Framer
	wmu   sync.Mutex // the reader answers SETTINGS and PING, and returns window
	block []byte     // the request's header block, encoded statelessly
	dec   *hpack.Decoder
}

// loadWindow is the client's receive window, connection and streams alike: large, as
// h2load's, so that window updates are rare.
const loadWindow = 1<<30 - 1

func dialH2C(tb testing.TB, port int) *h2cLoad {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	c := &h2cLoad{conn: conn, bw: bufio.NewWriter(conn)}
	c.fr = http2.NewFramer(c.bw, bufio.NewReader(conn))
	c.fr.SetReuseFrames()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/bench"},
		{":authority", "bench"}, {"user-agent", "h2load"}, {"accept", "*/*"}} {
		// Never-indexed literals leave the encoder's table empty: the block can be resent.
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	c.block = buf.Bytes()
	c.dec = hpack.NewDecoder(4096, nil)
	_, err = c.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: loadWindow})
	}
	if err == nil {
		err = c.fr.WriteWindowUpdate(0, loadWindow-65535)
	}
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (c *h2cLoad) flush() error { return c.bw.Flush() }

func (c *h2cLoad) close() { _ = c.conn.Close() }

// run sends n requests, at most inFlight at a time, and waits for their answers.
func (c *h2cLoad) run(n, inFlight int) error {
	done := make(chan error, inFlight)
	go c.read(done)
	next := uint32(1)
	send := func() error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: next, BlockFragment: c.block, EndStream: true, EndHeaders: true})
		next += 2
		if err != nil {
			return err
		}
		return c.flush()
	}
	sent := 0
	for ; sent < min(n, inFlight); sent++ {
		if err := send(); err != nil {
			return err
		}
	}
	for range n {
		if err := <-done; err != nil {
			return err
		}
		if sent < n {
			if err := send(); err != nil {
				return err
			}
			sent++
		}
	}
	return nil
}

// read reads frames, reporting each stream's end (an error for a status other than 200),
// until the connection fails.
func (c *h2cLoad) read(done chan<- error) {
	var status bool
	c.dec.SetEmitFunc(func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value == "200"
		}
	})
	received := 0
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			done <- err
			return
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			if _, err := c.dec.Write(f.HeaderBlockFragment()); err != nil || !f.HeadersEnded() {
				done <- errors.Join(errors.New("response headers"), err)
				return
			}
			if f.StreamEnded() {
				done <- statusError(status)
			}
		case *http2.DataFrame:
			received += len(f.Data())
			if received > loadWindow/2 {
				c.write(func() error { return c.fr.WriteWindowUpdate(0, uint32(received)) })
				received = 0
			}
			if f.StreamEnded() {
				done <- statusError(status)
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(c.fr.WriteSettingsAck)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.RSTStreamFrame:
			done <- fmt.Errorf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			done <- fmt.Errorf("goaway: %v", f.ErrCode)
			return
		}
	}
}

func (c *h2cLoad) write(frame func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if frame() == nil {
		_ = c.flush()
	}
}

func statusError(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("status other than 200")
}
