//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// idleConn is one idle keep-alive connection held open by the memory test.
type idleConn struct {
	c  net.Conn
	br *bufio.Reader
}

// request sends one GET and reads its answer, leaving the connection idle and reusable.
func (ic *idleConn) request(host string) error {
	if err := ic.c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(ic.c, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: strait-bench\r\n\r\n", host); err != nil {
		return err
	}
	resp, err := http.ReadResponse(ic.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		return errors.New("the proxy closed the keep-alive connection")
	}
	return ic.c.SetDeadline(time.Time{})
}

// alive reports whether the peer has not closed the connection: a read that times out means the
// connection is still open and idle; EOF means the proxy closed it.
func (ic *idleConn) alive() bool {
	if err := ic.c.SetReadDeadline(time.Now().Add(2 * time.Millisecond)); err != nil {
		return false
	}
	_, err := ic.br.Peek(1)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idleMemory opens n keep-alive connections to the proxy, sends one request on each (so each
// is an established HTTP connection, not only an accepted socket), leaves them idle, and
// reports the growth of the proxy's resident memory divided by n, in KiB.
func (b *bench) idleMemory(ctx context.Context, t *target, p *proc) (sample, string) {
	n := b.opts.idleConns
	host := fmt.Sprintf("127.0.0.1:%d", t.h1)
	dial := func() (*idleConn, error) {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &idleConn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
	}

	// Warm up first, so that pools and buffers the proxy allocates lazily exist in the baseline.
	for range 4 {
		ic, err := dial()
		if err != nil {
			return sample{err: "connect: " + err.Error()}, ""
		}
		for range 50 {
			if err := ic.request(host); err != nil {
				ic.c.Close()
				return sample{err: "warm-up request: " + err.Error()}, ""
			}
		}
		ic.c.Close()
	}
	if !sleepCtx(ctx, time.Second) {
		return sample{err: "interrupted"}, ""
	}
	before, err := groupRSS(p.pid)
	if err != nil {
		return sample{err: err.Error()}, ""
	}

	conns := make([]*idleConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ic, err := dial()
			if err == nil {
				conns[i] = ic
				err = ic.request(host)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	defer func() {
		for _, ic := range conns {
			if ic != nil {
				ic.c.Close()
			}
		}
	}()
	failed := 0
	var firstErr error
	for _, err := range errs {
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		return sample{err: fmt.Sprintf("%d of %d connections failed: %v", failed, n, firstErr)}, ""
	}
	if !sleepCtx(ctx, 2*time.Second) {
		return sample{err: "interrupted"}, ""
	}
	after, err := groupRSS(p.pid)
	if err != nil {
		return sample{err: err.Error()}, ""
	}
	closed := 0
	for _, ic := range conns {
		if !ic.alive() {
			closed++
		}
	}
	detail := fmt.Sprintf("RSS %s -> %s with %d idle connections", mibFromKiB(before), mibFromKiB(after), n)
	if closed > 0 {
		return sample{err: fmt.Sprintf("the proxy closed %d of %d idle connections within 2s", closed, n)}, detail
	}
	return sample{value: float64(after-before) / float64(n)}, detail
}

// mibFromKiB formats a size in KiB (as /proc reports it) in MiB.
func mibFromKiB(k int64) string {
	return fmt.Sprintf("%.1f MiB", float64(k)/1024)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// checkNoFile makes sure this process can hold the idle connections (Go raises the soft limit
// to the hard one at start; this only reports a limit that is still too low).
func checkNoFile(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil //nolint:nilerr // no limit information: try anyway
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("open file limit %d is below the %d the idle-connection test needs "+
			"(raise it with ulimit -n, or pass --idle-conns)", lim.Cur, need)
	}
	return nil
}
