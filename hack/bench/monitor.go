//go:build linux

package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the CPU times in /proc/stat and /proc/PID/stat (USER_HZ, 100 on every
// mainstream Linux build).
const userHZ = 100

// cpuMonitor measures how much CPU processes other than the bench's own use while it runs: a
// compiler or a test suite on the same two cores makes every figure meaningless, and this
// machine kind is shared. It samples once a second: busy time of the whole machine (user, nice,
// system) minus the bench's (itself, its reaped children, and the live processes of the groups
// it started). Interrupt time is left out on both sides.
type cpuMonitor struct {
	sup     *supervisor
	mu      sync.Mutex
	samples []float64 // cores used by others, one per second
	stop    chan struct{}
	done    chan struct{}
}

func newCPUMonitor(sup *supervisor) *cpuMonitor {
	return &cpuMonitor{sup: sup, stop: make(chan struct{}), done: make(chan struct{})}
}

func (m *cpuMonitor) start() {
	go func() {
		defer close(m.done)
		prevAll, prevOurs, prevT := machineBusyTicks(), m.sup.ourTicks(), time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			all, ours, now := machineBusyTicks(), m.sup.ourTicks(), time.Now()
			if all > 0 && prevAll > 0 {
				foreign := float64((all-prevAll)-(ours-prevOurs)) / userHZ / now.Sub(prevT).Seconds()
				m.mu.Lock()
				m.samples = append(m.samples, foreign)
				m.mu.Unlock()
			}
			prevAll, prevOurs, prevT = all, ours, now
		}
	}()
}

// finish stops sampling and summarizes: mean cores used by others, the worst second, and the
// share of seconds in which others used more than a tenth of a core.
func (m *cpuMonitor) finish() (mean, peak, busyShare float64, n int) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	busy := 0
	for _, s := range m.samples {
		mean += s
		peak = max(peak, s)
		if s > 0.1 {
			busy++
		}
	}
	n = len(m.samples)
	if n > 0 {
		// A process that exited between two samples can push one sample below zero and the
		// next above; the mean evens that out.
		mean = max(mean/float64(n), 0)
		busyShare = float64(busy) / float64(n)
	}
	return mean, peak, busyShare, n
}

// idleCheck measures, before the bench starts anything, how busy the machine already is.
func idleCheck(d time.Duration) float64 {
	a, t := machineBusyTicks(), time.Now()
	self := selfTicks()
	time.Sleep(d)
	b := machineBusyTicks()
	return max(float64((b-a)-(selfTicks()-self))/userHZ/time.Since(t).Seconds(), 0)
}

// machineBusyTicks is user+nice+system of all cores, from /proc/stat.
func machineBusyTicks() int64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "cpu" {
		return 0
	}
	var sum int64
	for _, v := range f[1:4] {
		n, _ := strconv.ParseInt(v, 10, 64)
		sum += n
	}
	return sum
}

// statTicks parses /proc/PID/stat: the process group, utime+stime, and cutime+cstime.
func statTicks(data []byte) (pgrp int, own, children int64, ok bool) {
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	// Fields after "pid (comm)": state 0, ppid 1, pgrp 2, utime 11, stime 12, cutime 13, cstime 14.
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, 0, false
	}
	n := func(k int) int64 {
		v, _ := strconv.ParseInt(f[k], 10, 64)
		return v
	}
	pgrp, _ = strconv.Atoi(f[2])
	return pgrp, n(11) + n(12), n(13) + n(14), true
}

// selfTicks is this process's CPU time and that of the children it reaped.
func selfTicks() int64 {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	_, own, children, _ := statTicks(data)
	return own + children
}

// ourTicks is the CPU time of the bench and everything it started, reaped or still running.
func (s *supervisor) ourTicks() int64 {
	s.mu.Lock()
	pgids := make([]int, 0, len(s.procs))
	for pgid := range s.procs {
		pgids = append(pgids, pgid)
	}
	s.mu.Unlock()
	total := selfTicks()
	if len(pgids) == 0 {
		return total
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return total
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Zombies count too: an exited child's time reaches our children time only once it
		// is reaped, and must not vanish in between.
		pgrp, own, children, ok := statTicks(data)
		if !ok || !slices.Contains(pgids, pgrp) {
			continue
		}
		total += own
		if pid == pgrp {
			total += children // a group leader's reaped workers
		}
	}
	return total
}

// cpuNote words the monitor's summary for the report; warn is set when others used enough CPU
// to distort the figures.
func cpuNote(mean, peak, busyShare float64, n int) (note string, warn bool) {
	if n == 0 {
		return "", false
	}
	note = fmt.Sprintf("other processes on this machine used %.2f cores on average during the run "+
		"(%.2f in the worst second; more than 0.1 core in %.0f%% of the %d seconds)", mean, peak, 100*busyShare, n)
	return note, mean > 0.05 || busyShare > 0.1
}
