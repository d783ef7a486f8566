package proxy

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds connecting to a TCP backend.
const dialTimeout = 10 * time.Second

// forwardTCP joins a downstream connection to a backend of the chain's clusters until
// either side closes. hello holds bytes already read from the client (a TLS ClientHello
// being passed through). Both legs stay plain kernel sockets, so that io.Copy splices them
// in the kernel (and in-kernel acceleration can take them over).
func (p *Proxy) forwardTCP(t *tcpChain, down net.Conn, hello []byte) {
	defer down.Close()
	cluster := p.upstreams.Cluster(t.pick(uint32(rand.Uint64N(uint64(t.total)))))
	if cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	up, err := cluster.DialTCP(ctx, nil)
	cancel()
	if err != nil {
		p.log.Debug("tcp backend", "cluster", cluster.Name(), "error", err)
		return
	}
	defer up.Close()
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			return
		}
	}
	p.metrics.tcpConnections.Inc()
	defer p.metrics.tcpConnections.Dec()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so that protocols that signal the end of input by closing
		// their write side still work.
		if c, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = c.CloseWrite()
		}
	}
	wg.Add(2)
	go pipe(up, down)
	go pipe(down, up)
	wg.Wait()
}
