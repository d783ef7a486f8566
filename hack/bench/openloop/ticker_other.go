//go:build !linux

package main

import "time"

// stdTicker is the portable fallback: Go's timers, which can be up to about a millisecond
// late when the process is idle. Latencies it reports carry that error.
type stdTicker struct{ t *time.Ticker }

func newTicker(period time.Duration) (ticker, error) {
	return &stdTicker{t: time.NewTicker(period)}, nil
}

func (t *stdTicker) Wait() error {
	<-t.t.C
	return nil
}

func (t *stdTicker) Stop() { t.t.Stop() }
