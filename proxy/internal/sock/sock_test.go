package sock

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// pair returns a wrapped connection and its peer, on loopback.
func pair(t *testing.T) (wrapped, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	wrapped = wrap(c.(*net.TCPConn)) // raw calls even with the race detector on (Wrap)
	t.Cleanup(func() {
		wrapped.Close()
		peer.Close()
	})
	return wrapped, peer
}

func TestWrap(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Error("a pipe was wrapped")
	}
	w, peer := pair(t)
	if _, ok := w.(syscall.Conn); !ok {
		t.Error("the wrapped connection lost SyscallConn")
	}
	_, isRaw := Wrap(peer).(*Conn)
	if want := runtime.GOOS == "linux" && !raceEnabled; isRaw != want {
		t.Errorf("Wrap of a TCP connection: raw %v, want %v (linux, race detector off)", isRaw, want)
	}
}

// TestReadWrite moves 8 MiB each way at once, far more than the socket buffers hold, so
// that both directions wait for the netpoller.
func TestReadWrite(t *testing.T) {
	w, peer := pair(t)
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	errs := make(chan error, 2)
	go func() { _, err := w.Write(data); errs <- err }()
	go func() { _, err := peer.Write(data); errs <- err }()
	fromPeer := make([]byte, len(data))
	if _, err := io.ReadFull(w, fromPeer); err != nil {
		t.Fatal(err)
	}
	fromW := make([]byte, len(data))
	if _, err := io.ReadFull(peer, fromW); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(fromPeer, data) || !bytes.Equal(fromW, data) {
		t.Fatal("bytes differ")
	}
	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Errorf("empty write: %d, %v", n, err)
	}
	if n, err := w.Read(nil); n != 0 || err != nil {
		t.Errorf("empty read: %d, %v", n, err)
	}
}

func TestEOF(t *testing.T) {
	w, peer := pair(t)
	_, _ = peer.Write([]byte("last"))
	peer.Close()
	b, err := io.ReadAll(w)
	if err != nil || string(b) != "last" {
		t.Fatalf("%q, %v; want the last bytes, then EOF", b, err)
	}
	if n, err := w.Read(make([]byte, 1)); n != 0 || err != io.EOF { //nolint:errorlint // io.Reader returns io.EOF itself
		t.Errorf("read after EOF: %d, %v", n, err)
	}
}

func TestDeadline(t *testing.T) {
	w, _ := pair(t)
	_ = w.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := w.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("error %v: want a *net.OpError of op read", err)
	}
	// Nobody reads on the other side: the write fills the socket buffers, then times out
	// with what it wrote counted.
	_ = w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := w.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == 64<<20 {
		t.Fatalf("write past the deadline: %d, %v; want part written and a timeout", n, err)
	}
}

func TestErrors(t *testing.T) {
	w, peer := pair(t)
	_ = peer.(*net.TCPConn).SetLinger(0) // closing sends a reset
	peer.Close()
	time.Sleep(20 * time.Millisecond)
	_, err := w.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read of a reset connection: %v, want ECONNRESET", err)
	}
	w.Close()
	if _, err := w.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read of a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write of a closed connection: %v, want net.ErrClosed", err)
	}
}

// TestCloseWakesRead closes the connection while a Read waits: the Read returns.
func TestCloseWakesRead(t *testing.T) {
	w, _ := pair(t)
	done := make(chan error, 1)
	go func() { _, err := w.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still waiting after Close")
	}
}
