//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// timerfdTicker wakes the pacer with a periodic timerfd. The fd is non-blocking, so os.File
// reads go through the runtime's netpoller: the pacer wakes within microseconds of each
// expiry. (Go's own timers, when the process is otherwise idle, sleep in epoll_pwait with
// millisecond resolution, which would add up to a millisecond of lateness to a send.)
type timerfdTicker struct {
	f   *os.File
	buf [8]byte
}

type itimerspec struct {
	interval syscall.Timespec
	value    syscall.Timespec
}

func newTicker(period time.Duration) (ticker, error) {
	const clockMonotonic = 1
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic,
		uintptr(syscall.O_NONBLOCK|syscall.O_CLOEXEC), 0)
	if errno != 0 {
		return nil, fmt.Errorf("timerfd_create: %w", errno)
	}
	spec := itimerspec{
		interval: syscall.NsecToTimespec(period.Nanoseconds()),
		value:    syscall.NsecToTimespec(period.Nanoseconds()),
	}
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0,
		uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		_ = syscall.Close(int(fd))
		return nil, fmt.Errorf("timerfd_settime: %w", errno)
	}
	return &timerfdTicker{f: os.NewFile(fd, "timerfd")}, nil
}

func (t *timerfdTicker) Wait() error {
	_, err := io.ReadFull(t.f, t.buf[:])
	return err
}

func (t *timerfdTicker) Stop() { _ = t.f.Close() }
