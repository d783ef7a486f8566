// Package sock reads and writes TCP connections with raw system calls.
//
// The net package makes every read and write of a socket a system call that may block
// (the runtime's entersyscall and exitsyscall around it), and the first such call after the
// process had nothing to run wakes the runtime's monitor thread (sysmon). A proxy serving one
// request at a time goes idle twice per request, so it pays a futex wake-up, a sleep and two
// context switches on top of each of those calls (docs/benchmarks.md). A non-blocking socket
// never blocks: Conn makes its reads and writes as raw system calls, and waits for readiness
// through the runtime's netpoller as net does (syscall.RawConn), deadlines included.
package sock

import "net"

// Wrap returns c with raw-system-call reads and writes when it is a TCP connection on a
// platform that has them, else c itself. Everything else (deadlines, Close, addresses,
// SyscallConn) is the TCP connection's own.
//
// With the race detector on, c is returned as it is: the net package tells the detector
// that a socket's reads follow its peer's writes, and raw calls would hide that order
// (every test passing data over a socket would report races that are not there).
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || raceEnabled {
		return c
	}
	return wrap(tc)
}
