//go:build !(linux || darwin)

package upstream

import "net"

// closedByPeer cannot look into the socket here: a connection the upstream closed is found
// when a request fails on it.
func closedByPeer(net.Conn) bool { return false }

// peekSocket cannot look into the socket here either.
func peekSocket(net.Conn) (closed, pending bool) { return false, false }
