//go:build linux || darwin

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// closedByPeer reports whether the upstream closed an idle connection (or sent bytes nobody
// asked for), by peeking at the socket without waiting. A connection it cannot look into
// counts as open.
func closedByPeer(c net.Conn) bool {
	closed, pending := peekSocket(c)
	return closed || pending
}

// peekSocket reports whether the peer closed the connection (or it failed), and whether
// bytes wait to be read, without waiting. It peeks through Control, not Read: net/http's
// read goroutine may be waiting in a Read of the same connection, which holds the
// connection's read lock.
func peekSocket(c net.Conn) (closed, pending bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true, false
	}
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = n > 0
		closed = (err == nil && n == 0) || (err != nil && !errors.Is(err, syscall.EAGAIN))
	})
	return closed || err != nil, pending
}
