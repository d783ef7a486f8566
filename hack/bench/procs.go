//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor starts every process of the benchmark in its own process group (so that nginx's
// workers go with their master) and kills them all on the way out, Ctrl-C included.
type supervisor struct {
	mu    sync.Mutex
	procs map[int]*proc
	dir   string // where logs go
}

type proc struct {
	name string
	pid  int // also the process group id
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // from Wait, valid once done is closed
}

func newSupervisor(dir string) *supervisor {
	return &supervisor{procs: map[int]*proc{}, dir: dir}
}

// command builds argv, prefixed with `taskset -c cpu` when cpu is set, in its own process group
// and killed if this process dies.
func command(cpu string, env []string, argv ...string) *exec.Cmd {
	if cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// start runs a long-lived process (a proxy or the backend) with its output in <dir>/<name>.log.
func (s *supervisor) start(name, cpu string, env []string, argv ...string) (*proc, error) {
	logPath := filepath.Join(s.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := command(cpu, env, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := s.launch(cmd, name, filepath.Base(argv[0]))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.log = logPath
	go func() {
		p.err = cmd.Wait()
		s.forget(p.pid)
		close(p.done)
	}()
	return p, nil
}

// launch starts cmd and registers it, unless the supervisor is shutting down. It also
// records the process group and program in <dir>/groups, for reapStale.
func (s *supervisor) launch(cmd *exec.Cmd, name, prog string) (*proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		return nil, errors.New("shutting down")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	s.procs[p.pid] = p
	if f, err := os.OpenFile(filepath.Join(s.dir, groupsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "%d %s\n", p.pid, prog)
		f.Close()
	}
	return p, nil
}

// Files in a run's temporary directory: the bench's own pid, and the process groups it started.
const (
	ownerFile  = "owner"
	groupsFile = "groups"
)

// reapStale ends what an earlier run that was killed outright (SIGKILL, so no clean-up ran)
// left behind: children die with the bench (Pdeathsig), but nginx's worker outlives its
// master. Only the processes of the groups that run recorded, still running the program it
// recorded, and only when that run's bench process is gone; then its directory is removed.
func reapStale(self string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "strait-bench-*"))
	for _, dir := range dirs {
		if dir == self {
			continue
		}
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(owner))); err != nil || running(pid) {
			continue // still running, or not ours to judge
		}
		groups, _ := os.ReadFile(filepath.Join(dir, groupsFile))
		for line := range strings.SplitSeq(string(groups), "\n") {
			var pgid int
			var prog string
			if _, err := fmt.Sscanf(line, "%d %s", &pgid, &prog); err != nil {
				continue
			}
			for _, pid := range groupPIDs(pgid) {
				if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil &&
					strings.TrimSpace(string(comm)) == prog {
					logf("ending pid %d (%s) left by an earlier run that was killed", pid, prog)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

func (s *supervisor) forget(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs != nil {
		delete(s.procs, pid)
	}
}

// run runs a short-lived process (a load generator) to completion and returns its stdout and
// stderr. It is killed when ctx ends or on shutdown.
func (s *supervisor) run(ctx context.Context, cpu string, env []string, argv ...string) (stdout, stderr string, err error) {
	cmd := command(cpu, env, argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	p, err := s.launch(cmd, filepath.Base(argv[0]), filepath.Base(argv[0]))
	if err != nil {
		return "", "", err
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		err = errors.Join(ctx.Err(), <-waitErr)
	}
	s.forget(p.pid)
	return out.String(), errb.String(), err
}

// stop ends a process group: SIGTERM, then SIGKILL after a grace period; a worker that
// outlived its master (it should not) goes too.
func (p *proc) stop() {
	if !p.exited() {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
		}
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopAll kills every process still running and refuses to start new ones.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for pid := range procs {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		alive := false
		for pid := range procs {
			if !groupGone(pid) {
				alive = true
				break
			}
		}
		if !alive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for pid := range procs {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// running reports whether pid is a live process (a zombie is not).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	return i >= 0 && len(f) > 0 && f[0] != "Z"
}

// groupGone reports whether no process of process group pgid is left (zombies aside).
func groupGone(pgid int) bool {
	return len(groupPIDs(pgid)) == 0
}

// groupPIDs lists the live processes of a process group, from /proc.
func groupPIDs(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupTicks is the CPU time (utime+stime, in userHZ ticks) of a process group's live
// processes, from /proc/PID/stat.
func groupTicks(pgid int) int64 {
	var total int64
	for _, pid := range groupPIDs(pgid) {
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if _, own, _, ok := statTicks(data); ok {
				total += own
			}
		}
	}
	return total
}

// groupRSS is the resident memory of a process group (nginx: master and worker), in KiB, from
// VmRSS in /proc/PID/status.
func groupRSS(pgid int) (int64, error) {
	pids := groupPIDs(pgid)
	if len(pids) == 0 {
		return 0, fmt.Errorf("no process in group %d", pgid)
	}
	var total int64
	for _, pid := range pids {
		kb, err := vmRSS(pid)
		if err != nil {
			return 0, err
		}
		total += kb
	}
	return total, nil
}

func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVMRSS(string(b))
}

func parseVMRSS(status string) (int64, error) {
	for line := range strings.SplitSeq(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}
