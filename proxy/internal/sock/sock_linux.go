package sock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn is a TCP connection whose Read and Write are raw system calls.
type Conn struct {
	*net.TCPConn
	r, w half
}

// half is one direction of a Conn, for one call at a time: the buffer of the call in
// progress and its outcome. Its function values are made once per connection, so that
// reading and writing allocate nothing.
type half struct {
	mu    sync.Mutex
	buf   []byte
	n     int
	errno syscall.Errno
	try   func(fd uintptr) bool                 // one attempt; false: wait for readiness
	wait  func(try func(fd uintptr) bool) error // the RawConn's Read or Write
}

func wrap(tc *net.TCPConn) net.Conn {
	rc, err := tc.SyscallConn()
	if err != nil {
		return tc
	}
	c := &Conn{TCPConn: tc}
	c.r.try, c.r.wait = c.read, rc.Read
	c.w.try, c.w.wait = c.write, rc.Write
	return c
}

// run makes one call with p, the netpoller waiting between attempts; op names it in errors.
func (h *half) run(c *Conn, op string, p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf, h.n, h.errno = p, 0, 0
	err := h.wait(h.try)
	n, errno := h.n, h.errno
	h.buf = nil
	switch {
	case err != nil:
		return n, c.opError(op, err)
	case errno != 0:
		return n, c.opError(op, os.NewSyscallError(op, errno))
	}
	return n, nil
}

// Read reads as net.TCPConn.Read does: io.EOF once the peer closed its side.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.r.run(c, "read", p)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

// Write writes all of p, waiting for room as net.TCPConn.Write does.
func (c *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.w.run(c, "write", p)
}

// read is one attempt to read into r.buf.
func (c *Conn) read(fd uintptr) bool {
	r := &c.r
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch e {
		case 0:
			r.n = int(n)
			return true
		case syscall.EAGAIN:
			return false
		case syscall.EINTR:
			continue
		}
		r.errno = e
		return true
	}
}

// write writes what is left of w.buf, as far as the socket takes it.
func (c *Conn) write(fd uintptr) bool {
	w := &c.w
	for w.n < len(w.buf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&w.buf[w.n])), uintptr(len(w.buf)-w.n))
		switch e {
		case 0:
			w.n += int(n)
		case syscall.EAGAIN:
			return false
		case syscall.EINTR:
		default:
			w.errno = e
			return true
		}
	}
	return true
}

// opError says what failed as net does. An error of the RawConn (a deadline, a closed
// connection) is already a *net.OpError, of a "raw-" operation: it gets the plain name.
func (c *Conn) opError(op string, err error) error {
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
