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
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n > 0 || (err == nil && n == 0) || (err != nil && !errors.Is(err, syscall.EAGAIN))
		return true // never wait
	})
	return err != nil || closed
}
