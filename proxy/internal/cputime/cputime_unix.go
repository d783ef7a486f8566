//go:build unix

// Package cputime tells the CPU time the process has used, for benchmarks that report CPU
// time per operation next to wall time.
package cputime

import (
	"syscall"
	"time"
)

// Process is the CPU time the process has used so far, user and system, or 0 where it
// cannot tell.
func Process() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
