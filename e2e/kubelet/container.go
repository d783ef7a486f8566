package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Restart back-off: doubles from minBackoff up to maxBackoff, and starts over after a
// process ran for resetBackoffAfter. Shorter than a real kubelet's (10s to 5m) so that
// tests of crashing pods stay quick.
const (
	minBackoff        = time.Second
	maxBackoff        = 30 * time.Second
	resetBackoffAfter = time.Minute
)

// containerRunner runs one container's process and restarts it per the pod's
// restartPolicy. Its state is what the pod status reports.
type containerRunner struct {
	w      *podWorker
	spec   *corev1.Container
	policy corev1.RestartPolicy
	logDir string        // holds <container>.<generation>.log, each process's stdout and stderr
	done   chan struct{} // closed when run returns

	mu           sync.Mutex
	proc         *os.Process // nil between processes
	generation   int         // counts processes, so that a late probe result is dropped
	state        corev1.ContainerState
	lastState    corev1.ContainerState
	ready        bool
	restartCount int32
}

func newContainerRunner(w *podWorker, pod *corev1.Pod, i int) *containerRunner {
	spec := pod.Spec.Containers[i].DeepCopy()
	return &containerRunner{
		w:      w,
		spec:   spec,
		policy: pod.Spec.RestartPolicy,
		logDir: filepath.Join(w.dir, "logs"),
		done:   make(chan struct{}),
		state:  corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
	}
}

// run starts the process, waits for it, and restarts it until ctx ends or the restart
// policy says the container is done. Errors that a retry may cure (a missing Secret, a
// failed build) are retried; an image that cannot run waits for ctx.
func (r *containerRunner) run(ctx context.Context) {
	defer close(r.done)
	if slices.Contains(r.w.k.opts.ReadyImages, repository(r.spec.Image)) {
		r.setReadyWithoutProcess()
		<-ctx.Done()
		return
	}
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		cmd, err := r.start(ctx)
		if err != nil {
			var imgErr *imageError
			if errors.As(err, &imgErr) {
				r.setWaiting(imgErr.reason, imgErr.message)
				<-ctx.Done()
				return
			}
			if ctx.Err() != nil {
				return
			}
			r.setWaiting("CreateContainerConfigError", err.Error())
			sleep(ctx, retryEvery)
			continue
		}
		startedAt := time.Now()
		probeCtx, stopProbe := context.WithCancel(ctx)
		go r.probe(probeCtx, r.generation, cmd.Env)
		waitErr := cmd.Wait()
		stopProbe()
		code := exitCode(cmd, waitErr)
		r.setTerminated(code, startedAt)
		if ctx.Err() != nil || !restarts(r.policy, code) {
			return
		}
		if time.Since(startedAt) > resetBackoffAfter {
			backoff = 0
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		r.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container %s", backoff, r.spec.Name))
		sleep(ctx, backoff)
	}
}

// start prepares and starts one process: in the pod's network namespace, in a private
// mount namespace when the container mounts volumes.
func (r *containerRunner) start(ctx context.Context) (*exec.Cmd, error) {
	proc, err := r.w.k.bins.resolveImage(ctx, r.spec)
	if err != nil {
		return nil, err
	}
	env, err := r.w.env(ctx, r.spec)
	if err != nil {
		return nil, err
	}
	lookup := func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v, true
			}
		}
		return "", false
	}
	args := make([]string, len(proc.args))
	for i, a := range proc.args {
		args[i] = expand(a, lookup)
	}
	mounts, err := r.w.mounts(ctx, r.spec)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("container log: %w", err)
	}
	// Only this goroutine changes generation, so reading it without mu is safe here.
	logFile, err := os.OpenFile(r.logPath(r.generation+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("container log: %w", err)
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor

	// nsenter and unshare exec what follows them, and so does the shell, so the process
	// that gets the signals is the container's program itself.
	argv := []string{"nsenter", "--net=" + r.w.sandbox.netnsPath(), "--"}
	if len(mounts) > 0 {
		argv = append(argv, "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", mountScript(mounts), "sh")
	}
	argv = append(argv, proc.path)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	if r.spec.WorkingDir != "" {
		cmd.Dir = r.spec.WorkingDir
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Setpgid keeps a terminal's ^C away from the pods; Pdeathsig kills them if the
	// kubelet's process dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	r.mu.Lock()
	defer r.mu.Unlock()
	// Checked under mu: terminate cancels ctx before it signals, so no process starts
	// after terminate has looked for processes to kill.
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", proc.path, err)
	}
	r.proc = cmd.Process
	r.generation++
	r.restartCount = int32(r.generation - 1)
	if r.state.Terminated != nil {
		r.lastState = r.state
	}
	r.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	r.ready = false
	r.w.notify()
	return cmd, nil
}

// logPath is the log of process generation gen (1 for the first).
func (r *containerRunner) logPath(gen int) string {
	return filepath.Join(r.logDir, fmt.Sprintf("%s.%d.log", r.spec.Name, gen))
}

// currentGeneration is the number of processes started so far.
func (r *containerRunner) currentGeneration() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.generation
}

// runs says whether process generation gen is running.
func (r *containerRunner) runs(gen int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.generation == gen && r.proc != nil
}

// signal sends sig to the running process, if any.
func (r *containerRunner) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		_ = r.proc.Signal(sig)
	}
}

func (r *containerRunner) setWaiting(reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.Terminated != nil {
		r.lastState = r.state
	}
	r.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	r.ready = false
	r.w.notify()
}

func (r *containerRunner) setTerminated(code int, startedAt time.Time) {
	reason := "Completed"
	message := ""
	if code != 0 {
		reason = "Error"
		message = tail(r.logPath(r.generation), 1024) // as terminationMessagePolicy FallbackToLogsOnError
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proc = nil
	r.state = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:   int32(code),
		Reason:     reason,
		Message:    message,
		StartedAt:  metav1.NewTime(startedAt),
		FinishedAt: metav1.Now(),
	}}
	r.ready = false
	r.w.notify()
}

// setReadyWithoutProcess reports the container Running and Ready though nothing runs
// (Options.ReadyImages).
func (r *containerRunner) setReadyWithoutProcess() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	r.ready = true
	r.w.notify()
}

// setReady records a probe result for process generation gen.
func (r *containerRunner) setReady(gen int, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen != r.generation || r.state.Running == nil || r.ready == ready {
		return
	}
	r.ready = ready
	r.w.notify()
}

// status is the container's entry in the pod's containerStatuses.
func (r *containerRunner) status() corev1.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := corev1.ContainerStatus{
		Name:                 r.spec.Name,
		Image:                r.spec.Image,
		ImageID:              "process://" + repository(r.spec.Image),
		State:                *r.state.DeepCopy(),
		LastTerminationState: *r.lastState.DeepCopy(),
		Ready:                r.ready,
		RestartCount:         r.restartCount,
		Started:              ptr.To(r.state.Running != nil),
	}
	if r.state.Running != nil && r.proc != nil {
		s.ContainerID = "process://" + strconv.Itoa(r.proc.Pid)
	}
	return s
}

// restarts says whether a process that exited with code runs again.
func restarts(policy corev1.RestartPolicy, code int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		if err != nil {
			return 128
		}
		return 0
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
}

// tail returns up to the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
