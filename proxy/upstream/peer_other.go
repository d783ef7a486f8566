//go:build !(linux || darwin)

package upstream

import "net"

// closedByPeer cannot look into the socket here: a connection the upstream closed is found
// when a request fails on it.
func closedByPeer(net.Conn) bool { return false }

// peeker cannot look into sockets here either.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

// peek reports the connection open.
func (*peeker) peek() (closed, pending bool) { return false, false }
