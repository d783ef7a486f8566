//go:build !unix

package h2

import "time"

// processCPU is the CPU time the process has used so far; 0: this platform cannot tell.
func processCPU() time.Duration { return 0 }
