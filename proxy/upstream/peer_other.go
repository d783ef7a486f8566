//go:build !(linux || darwin)

package upstream

import "net"

// peeker cannot look into sockets here: a connection the upstream closed is found when a
// request fails on it.
type peeker struct{}

func newPeeker(net.Conn) *peeker { return &peeker{} }

// peek reports the connection open.
func (*peeker) peek() (closed, pending bool) { return false, false }
