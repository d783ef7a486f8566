//go:build !unix

// Package cputime tells the CPU time the process has used, for benchmarks that report CPU
// time per operation next to wall time.
package cputime

import "time"

// Process is the CPU time the process has used so far; 0: this platform cannot tell.
func Process() time.Duration { return 0 }
