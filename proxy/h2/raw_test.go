package h2

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawClient speaks frames to the server, for what a well-behaved client never sends.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

// dialRaw connects, sends the preface and settings, and reads the server's SETTINGS.
func dialRaw(t *testing.T, ts *testServer, settings ...http2.Setting) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	// Not an assertion on time: only a guard so that a broken server fails the test
	// instead of hanging it.
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.fr.AllowIllegalWrites = true
	c.enc = hpack.NewEncoder(&c.buf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f := c.next()
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		t.Fatalf("first frame from the server: %v", f)
	}
	_ = c.fr.WriteSettingsAck()
	return c
}

// next reads the next frame but SETTINGS ACKs and WINDOW_UPDATEs on stream 0.
func (c *rawClient) next() http2.Frame {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("reading a frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				continue
			}
		}
		return f
	}
}

// block encodes header fields given as name, value pairs.
func (c *rawClient) block(kv ...string) []byte {
	c.buf.Reset()
	for i := 0; i < len(kv); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), c.buf.Bytes()...)
}

func (c *rawClient) headers(id uint32, end bool, kv ...string) {
	c.t.Helper()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(kv...), EndStream: end, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

var get = []string{":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/"}

func post(extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":authority", "x", ":path", "/"}, extra...)
}

// sync sends a PING and reads to its ACK: the server has read everything sent before it.
// A GOAWAY on the way fails the test.
func (c *rawClient) sync() {
	c.t.Helper()
	_ = c.fr.WritePing(false, [8]byte{'s', 'y', 'n', 'c'})
	for {
		switch f := c.next().(type) {
		case *http2.PingFrame:
			if f.IsAck() && string(f.Data[:4]) == "sync" {
				return
			}
		case *http2.GoAwayFrame:
			c.t.Fatalf("GOAWAY %v while waiting for a PING ACK", f.ErrCode)
		}
	}
}

// wantGoAway reads until GOAWAY and checks its code, then that the connection ends.
func (c *rawClient) wantGoAway(code http2.ErrCode) {
	c.t.Helper()
	for {
		f := c.next()
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != code {
				c.t.Fatalf("GOAWAY %v, want %v", ga.ErrCode, code)
			}
			break
		}
	}
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
				c.t.Fatalf("after GOAWAY: %v, want the connection closed", err)
			}
			return
		}
	}
}

// wantReset reads until RST_STREAM on id and checks its code.
func (c *rawClient) wantReset(id uint32, code http2.ErrCode) {
	c.t.Helper()
	for {
		f := c.next()
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID != id || f.ErrCode != code {
				c.t.Fatalf("RST_STREAM %d %v, want %d %v", f.StreamID, f.ErrCode, id, code)
			}
			return
		case *http2.GoAwayFrame:
			c.t.Fatalf("GOAWAY %v, want RST_STREAM %d %v", f.ErrCode, id, code)
		}
	}
}

// wantResponse reads stream id's response to its end and returns its status and body.
func (c *rawClient) wantResponse(id uint32) (string, string) {
	c.t.Helper()
	r := c.wantResponses(id)[id]
	return r[0], r[1]
}

// wantResponses reads the responses of the streams ids to their ends, whatever their order,
// and returns their statuses and bodies.
func (c *rawClient) wantResponses(ids ...uint32) map[uint32][2]string {
	c.t.Helper()
	got := map[uint32][2]string{}
	open := map[uint32]bool{}
	for _, id := range ids {
		open[id] = true
	}
	dec := hpack.NewDecoder(4096, nil)
	for len(open) > 0 {
		f := c.next()
		id := f.Header().StreamID
		r := got[id]
		switch f := f.(type) {
		case *http2.HeadersFrame:
			dec.SetEmitFunc(func(hf hpack.HeaderField) {
				if hf.Name == ":status" {
					r[0] = hf.Value
				}
			})
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				c.t.Fatal(err)
			}
		case *http2.DataFrame:
			r[1] += string(f.Data())
		case *http2.RSTStreamFrame:
			if open[id] {
				c.t.Fatalf("stream %d reset: %v", id, f.ErrCode)
			}
		}
		got[id] = r
		if f.Header().Flags.Has(http2.FlagDataEndStream) && (f.Header().Type == http2.FrameData || f.Header().Type == http2.FrameHeaders) {
			delete(open, id)
		}
	}
	return got
}

// blocking is a handler that waits for the client to go away.
var blocking = HandlerFunc(func(s *Stream) { <-s.Done() })

// misbehavior is a client breaking the protocol and the error code it must draw.
type misbehavior struct {
	name string
	send func(c *rawClient)
	code http2.ErrCode
}

// runMisbehaviors sends each case on its own connection to a server with 64 KiB stream
// windows whose handlers block, then checks the server's answer with want.
func runMisbehaviors(t *testing.T, cases []misbehavior, want func(c *rawClient, code http2.ErrCode)) {
	ts := startServer(t, &Config{InitialWindowSize: 65535}, blocking)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			tc.send(c)
			want(c, tc.code)
		})
	}
}

func TestConnectionErrors(t *testing.T) {
	runMisbehaviors(t, []misbehavior{
		{"DATA on stream 0", func(c *rawClient) { _ = c.fr.WriteData(0, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"HEADERS on an even stream", func(c *rawClient) { c.headers(2, true, get...) }, http2.ErrCodeProtocol},
		{"HEADERS reusing a stream that finished", func(c *rawClient) {
			c.headers(1, true, get...)
			_ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			c.sync()
			c.headers(1, true, get...)
		}, http2.ErrCodeStreamClosed},
		{"frame larger than MAX_FRAME_SIZE", func(c *rawClient) {
			c.headers(1, false, post()...)
			_ = c.fr.WriteData(1, false, make([]byte, 16385))
		}, http2.ErrCodeFrameSize},
		{"WINDOW_UPDATE on an idle stream", func(c *rawClient) { _ = c.fr.WriteWindowUpdate(9, 1) }, http2.ErrCodeProtocol},
		{"RST_STREAM on an idle stream", func(c *rawClient) { _ = c.fr.WriteRSTStream(9, http2.ErrCodeCancel) }, http2.ErrCodeProtocol},
		{"DATA on an idle stream", func(c *rawClient) { _ = c.fr.WriteData(9, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"connection window overflow", func(c *rawClient) { _ = c.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"connection window exceeded", func(c *rawClient) {
			// 65,535 bytes on each of 18 streams: within every stream's window, past the
			// connection's 1 MiB.
			for id := uint32(1); id <= 35; id += 2 {
				c.headers(id, false, post()...)
				for sent := 0; sent < 65535; sent += 16383 {
					_ = c.fr.WriteData(id, false, make([]byte, min(16383, 65535-sent)))
				}
			}
		}, http2.ErrCodeFlowControl},
		{"INITIAL_WINDOW_SIZE too large", func(c *rawClient) {
			_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}, http2.ErrCodeFlowControl},
		{"MAX_FRAME_SIZE too small", func(c *rawClient) {
			_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 100})
		}, http2.ErrCodeProtocol},
		{"SETTINGS ACK with a payload", func(c *rawClient) {
			_ = c.fr.WriteRawFrame(http2.FrameSettings, http2.FlagSettingsAck, 0, make([]byte, 6))
		}, http2.ErrCodeFrameSize},
		{"PING on a stream", func(c *rawClient) {
			_ = c.fr.WriteRawFrame(http2.FramePing, 0, 1, make([]byte, 8))
		}, http2.ErrCodeProtocol},
		{"CONTINUATION flood", func(c *rawClient) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(get...)})
			for range 1000 {
				if c.fr.WriteContinuation(1, false, nil) != nil {
					return
				}
			}
		}, http2.ErrCodeEnhanceYourCalm},
		{"header block too large", func(c *rawClient) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(get...)})
			for range 10 {
				if c.fr.WriteContinuation(1, false, make([]byte, 16000)) != nil {
					return
				}
			}
		}, http2.ErrCodeEnhanceYourCalm},
		{"frame between HEADERS and CONTINUATION", func(c *rawClient) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(get...)})
			_ = c.fr.WritePing(false, [8]byte{})
		}, http2.ErrCodeProtocol},
		{"broken HPACK", func(c *rawClient) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true})
		}, http2.ErrCodeCompression},
		{"PUSH_PROMISE from the client", func(c *rawClient) {
			_ = c.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: c.block(get...), EndHeaders: true})
		}, http2.ErrCodeProtocol},
	}, (*rawClient).wantGoAway)
}

func TestFirstFrameMustBeSettings(t *testing.T) {
	ts := startServer(t, nil, blocking)
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	_, _ = io.WriteString(nc, http2.ClientPreface)
	_ = c.fr.WritePing(false, [8]byte{})
	c.wantGoAway(http2.ErrCodeProtocol)
}

func TestStreamErrors(t *testing.T) {
	runMisbehaviors(t, []misbehavior{
		{"uppercase field name", func(c *rawClient) { c.headers(1, true, append(get[:8:8], "X-Up", "1")...) }, http2.ErrCodeProtocol},
		{"pseudo-header field after a regular one", func(c *rawClient) {
			c.headers(1, true, ":method", "GET", ":scheme", "http", "x-a", "1", ":path", "/")
		}, http2.ErrCodeProtocol},
		{"pseudo-header field twice", func(c *rawClient) { c.headers(1, true, append(get[:8:8], ":path", "/again")...) }, http2.ErrCodeProtocol},
		{"unknown pseudo-header field", func(c *rawClient) { c.headers(1, true, append(get[:8:8], ":protocol", "websocket")...) }, http2.ErrCodeProtocol},
		{":status in a request", func(c *rawClient) { c.headers(1, true, append([]string{":status", "200"}, get...)...) }, http2.ErrCodeProtocol},
		{"no :path", func(c *rawClient) { c.headers(1, true, ":method", "GET", ":scheme", "http") }, http2.ErrCodeProtocol},
		{"empty :path", func(c *rawClient) { c.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "") }, http2.ErrCodeProtocol},
		{"connection field", func(c *rawClient) { c.headers(1, true, append(get[:8:8], "connection", "keep-alive")...) }, http2.ErrCodeProtocol},
		{"transfer-encoding field", func(c *rawClient) { c.headers(1, true, append(get[:8:8], "transfer-encoding", "chunked")...) }, http2.ErrCodeProtocol},
		{"te other than trailers", func(c *rawClient) { c.headers(1, true, append(get[:8:8], "te", "gzip")...) }, http2.ErrCodeProtocol},
		{"CR in a value", func(c *rawClient) { c.headers(1, true, append(get[:8:8], "x-a", "a\rb")...) }, http2.ErrCodeProtocol},
		{"content-length above the DATA", func(c *rawClient) {
			c.headers(1, false, post("content-length", "5")...)
			_ = c.fr.WriteData(1, true, []byte("abc"))
		}, http2.ErrCodeProtocol},
		{"content-length below the DATA", func(c *rawClient) {
			c.headers(1, false, post("content-length", "2")...)
			_ = c.fr.WriteData(1, true, []byte("abc"))
		}, http2.ErrCodeProtocol},
		{"content-length on a request that ended", func(c *rawClient) { c.headers(1, true, post("content-length", "2")...) }, http2.ErrCodeProtocol},
		{"DATA after END_STREAM", func(c *rawClient) {
			c.headers(1, true, post()...)
			_ = c.fr.WriteData(1, false, []byte("late"))
		}, http2.ErrCodeStreamClosed},
		{"stream window exceeded", func(c *rawClient) {
			c.headers(1, false, post()...)
			for sent := 0; sent < 65536; sent += 16384 {
				_ = c.fr.WriteData(1, false, make([]byte, min(16384, 65536-sent)))
			}
		}, http2.ErrCodeFlowControl},
		{"stream window overflow", func(c *rawClient) {
			c.headers(1, false, post()...)
			_ = c.fr.WriteWindowUpdate(1, 1<<31-1)
		}, http2.ErrCodeFlowControl},
		{"WINDOW_UPDATE of 0", func(c *rawClient) {
			c.headers(1, false, post()...)
			_ = c.fr.WriteWindowUpdate(1, 0)
		}, http2.ErrCodeProtocol},
		{"trailers without END_STREAM", func(c *rawClient) {
			c.headers(1, false, post()...)
			c.headers(1, false, "x-t", "1")
		}, http2.ErrCodeProtocol},
		{"pseudo-header field in trailers", func(c *rawClient) {
			c.headers(1, false, post()...)
			c.headers(1, true, ":path", "/")
		}, http2.ErrCodeProtocol},
		{"HEADERS depending on itself", func(c *rawClient) {
			_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(get...), EndStream: true, EndHeaders: true,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 1}})
		}, http2.ErrCodeProtocol},
		{"PRIORITY depending on itself", func(c *rawClient) {
			_ = c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 1})
		}, http2.ErrCodeProtocol},
	}, func(c *rawClient, code http2.ErrCode) {
		c.wantReset(1, code)
		// The connection lives on: a PING is answered.
		c.sync()
	})
}

func TestRefusedBeyondMaxStreams(t *testing.T) {
	ts := startServer(t, &Config{MaxConcurrentStreams: 2}, blocking)
	c := dialRaw(t, ts)
	c.headers(1, true, get...)
	c.headers(3, true, get...)
	c.headers(5, true, get...)
	c.wantReset(5, http2.ErrCodeRefusedStream)
}

func TestHeaderListTooLarge(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) { _, _ = io.WriteString(s, "ok") }))
	c := dialRaw(t, ts)
	big := strings.Repeat("v", 70<<10)
	// Literal without indexing, so that the encoder's table does not matter.
	c.buf.Reset()
	for i := 0; i < len(get); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: get[i], Value: get[i+1]})
	}
	_ = c.enc.WriteField(hpack.HeaderField{Name: "x-big", Value: big, Sensitive: true})
	blk := c.buf.Bytes()
	_ = c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:16384], EndStream: true})
	for blk = blk[16384:]; len(blk) > 0; {
		n := min(len(blk), 16384)
		_ = c.fr.WriteContinuation(1, n == len(blk), blk[:n])
		blk = blk[n:]
	}
	if status, _ := c.wantResponse(1); status != "431" {
		t.Fatalf("status %s, want 431", status)
	}
	// HPACK stayed in step: the next request is served.
	c.headers(3, true, get...)
	if status, body := c.wantResponse(3); status != "200" || body != "ok" {
		t.Fatalf("next request: %s %q", status, body)
	}
}

func TestRapidReset(t *testing.T) {
	ts := startServer(t, &Config{MaxResetBurst: 50, MaxResetRate: 1}, blocking)
	c := dialRaw(t, ts)
	for id := uint32(1); id < 2*200; id += 2 {
		err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block(get...), EndStream: true, EndHeaders: true})
		if err != nil || c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break // the server hung up: its GOAWAY is waiting to be read
		}
	}
	c.wantGoAway(http2.ErrCodeEnhanceYourCalm)
}

func TestPaddingAndUnknownFrames(t *testing.T) {
	ts := startServer(t, nil, echo)
	c := dialRaw(t, ts)
	_ = c.fr.WriteRawFrame(0xfa, 0, 0, []byte("unknown frames are ignored"))
	c.headers(1, false, post()...)
	_ = c.fr.WriteDataPadded(1, false, []byte("padded "), make([]byte, 200))
	_ = c.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 9})
	_ = c.fr.WriteDataPadded(1, true, []byte("body"), make([]byte, 3))
	if status, body := c.wantResponse(1); status != "200" || body != "padded body" {
		t.Fatalf("%s %q", status, body)
	}
}

func TestPeerWindowAndSettingsChange(t *testing.T) {
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		_, _ = s.Write(bytes.Repeat([]byte("x"), 100))
	}))
	c := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	c.headers(1, true, get...)
	got := 0
	for got < 10 {
		switch f := c.next().(type) {
		case *http2.DataFrame:
			got += len(f.Data())
			if got > 10 || f.StreamEnded() {
				t.Fatalf("%d bytes with a window of 10 (end %t)", got, f.StreamEnded())
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v", f)
		}
	}
	// Raising INITIAL_WINDOW_SIZE applies to the open stream: 90 more bytes may come.
	_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	for {
		f, ok := c.next().(*http2.DataFrame)
		if !ok {
			continue
		}
		got += len(f.Data())
		if f.StreamEnded() {
			break
		}
	}
	if got != 100 {
		t.Fatalf("%d bytes in all", got)
	}
}

func TestRequestBodyCredit(t *testing.T) {
	// A body larger than the stream window goes through only if reading it gives credit
	// back; the raw client sends each frame only after credit for it.
	ts := startServer(t, &Config{InitialWindowSize: 65535}, echo)
	c := dialRaw(t, ts)
	c.headers(1, false, post()...)
	sendWin := int64(65535)
	connWin := int64(65535)
	total := 300000
	received := 0
	for sent := 0; sent < total; {
		n := int(min(int64(16384), sendWin, connWin, int64(total-sent)))
		if n > 0 {
			_ = c.fr.WriteData(1, sent+n == total, make([]byte, n))
			sent += n
			sendWin -= int64(n)
			connWin -= int64(n)
			continue
		}
		// Read until the server gives credit back; its echo is answered with ours.
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWin += int64(f.Increment)
			} else {
				sendWin += int64(f.Increment)
			}
		case *http2.DataFrame:
			received += len(f.Data())
			if len(f.Data()) > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
				_ = c.fr.WriteWindowUpdate(1, uint32(len(f.Data())))
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v", f)
		}
	}
	for received < total {
		f, ok := c.next().(*http2.DataFrame)
		if !ok {
			continue
		}
		received += len(f.Data())
		if len(f.Data()) > 0 {
			_ = c.fr.WriteWindowUpdate(0, uint32(len(f.Data())))
			_ = c.fr.WriteWindowUpdate(1, uint32(len(f.Data())))
		}
	}
	if received != total {
		t.Fatalf("echoed %d of %d", received, total)
	}
}

func TestIdleTimeout(t *testing.T) {
	ts := startServer(t, &Config{IdleTimeout: 20 * time.Millisecond}, blocking)
	c := dialRaw(t, ts)
	c.wantGoAway(http2.ErrCodeNo)
}

func TestGoAwayLastStreamID(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, nil, HandlerFunc(func(s *Stream) {
		<-release
		_, _ = io.WriteString(s, "done")
	}))
	c := dialRaw(t, ts)
	c.headers(1, true, get...)
	c.headers(3, true, get...)
	// A PING round trip: both streams were read before Shutdown.
	c.sync()
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(t.Context()) }()
	f := c.next()
	ga, ok := f.(*http2.GoAwayFrame)
	if !ok || ga.LastStreamID != 3 || ga.ErrCode != http2.ErrCodeNo {
		t.Fatalf("%v, want GOAWAY 3 NO_ERROR", f)
	}
	// A stream after GOAWAY is ignored; the two before it finish.
	c.headers(5, true, get...)
	close(release)
	for id, r := range c.wantResponses(1, 3) {
		if r != [2]string{"200", "done"} {
			t.Fatalf("stream %d: %q", id, r)
		}
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID == 5 {
			t.Fatalf("stream 5, opened after GOAWAY, got %v", f)
		}
	}
}

func TestIdleTimeoutBeforePreface(t *testing.T) {
	ts := startServer(t, &Config{IdleTimeout: 20 * time.Millisecond}, blocking)
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	// The server hangs up on a client that sends nothing: the read ends without the
	// guard's timeout.
	_, err = io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a silent client's connection stayed open")
	}
}

func TestSettingsFlood(t *testing.T) {
	ts := startServer(t, nil, blocking)
	c := dialRaw(t, ts)
	// The client sends SETTINGS and never reads the ACKs: once the socket buffers are full,
	// the ACKs queue in the server, which must give up on the connection (its reads stop and
	// the socket closes) rather than queue without end. Without that, the writes would go on
	// until the guard's deadline.
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	fr := http2.NewFramer(bw, nil)
	var err error
	for err == nil {
		if err = fr.WriteSettings(); err == nil && bw.Available() < 64 {
			err = bw.Flush()
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept reading SETTINGS it could not acknowledge: %v", err)
	}
}
