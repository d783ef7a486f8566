//go:build !linux

package sock

import "net"

func wrap(tc *net.TCPConn) net.Conn { return tc }
