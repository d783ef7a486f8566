//go:build linux || darwin

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// peeker looks into one socket without waiting. It is made once per connection, so that
// looking allocates nothing; it is not safe for concurrent use.
type peeker struct {
	rc              syscall.RawConn // nil: the connection cannot be looked into
	look            func(fd uintptr)
	buf             [1]byte
	closed, pending bool
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.look = p.recv
	return p
}

func (p *peeker) recv(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.pending = n > 0
	p.closed = (err == nil && n == 0) || (err != nil && !errors.Is(err, syscall.EAGAIN))
}

// peek reports whether the peer closed the connection (or it failed), and whether bytes
// wait to be read. It looks through Control, not Read: net/http's read goroutine may be
// waiting in a Read of the same connection, which holds the connection's read lock.
func (p *peeker) peek() (closed, pending bool) {
	if p.rc == nil {
		return false, false
	}
	p.closed, p.pending = false, false
	if err := p.rc.Control(p.look); err != nil {
		return true, false
	}
	return p.closed, p.pending
}
