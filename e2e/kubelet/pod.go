package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// retryEvery paces retries of what may succeed later: a pod network that failed to come
// up, a status write the apiserver refused, a Secret that does not exist yet.
const retryEvery = 2 * time.Second

// podWorker runs one pod: its network namespace, a containerRunner per container and its
// status. Its goroutine (run) alone writes the pod's status and tears the pod down, so
// those never race; runners only report through notify.
type podWorker struct {
	k   *Kubelet
	key string
	uid types.UID
	dir string // the pod's volumes and logs

	updates chan *corev1.Pod // capacity 1: only the newest pod matters
	dirty   chan struct{}    // capacity 1: the status may have changed
	stopCh  chan struct{}    // closed by stop
	stopCtx context.Context  // bounds the grace period on stop; set before stopCh closes
	stopped sync.Once
	done    chan struct{} // closed when run returns

	// Set by run before the runners start, read-only afterwards.
	stopRunners context.CancelFunc // ends the runners' restarts and probes, not their processes
	sandbox     podSandbox
	sandboxErr  error
	runners     []*containerRunner

	podMu sync.Mutex  // guards pod, and runners for goroutines other than run
	pod   *corev1.Pod // newest seen

	volumes podVolumes

	// Owned by run.
	conditions  map[corev1.PodConditionType]corev1.PodCondition
	startTime   metav1.Time
	lastWritten *corev1.PodStatus
}

func newPodWorker(k *Kubelet, pod *corev1.Pod) *podWorker {
	dir := filepath.Join(k.stateDir, string(pod.UID))
	return &podWorker{
		k:          k,
		key:        pod.Namespace + "/" + pod.Name,
		uid:        pod.UID,
		dir:        dir,
		updates:    make(chan *corev1.Pod, 1),
		dirty:      make(chan struct{}, 1),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		pod:        pod,
		volumes:    podVolumes{dir: filepath.Join(dir, "volumes")},
		conditions: map[corev1.PodConditionType]corev1.PodCondition{},
		startTime:  metav1.Now(),
	}
}

// update hands the worker the newest version of its pod.
func (w *podWorker) update(pod *corev1.Pod) {
	w.podMu.Lock()
	w.pod = pod
	w.podMu.Unlock()
	select {
	case w.updates <- pod:
	default:
		// One is pending; run reads w.pod, the newest, when it takes it.
	}
}

func (w *podWorker) currentPod() *corev1.Pod {
	w.podMu.Lock()
	defer w.podMu.Unlock()
	return w.pod
}

// notify tells run that a container's state changed.
func (w *podWorker) notify() {
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// stop kills the pod's processes and removes its network without deleting the pod from
// the API (the kubelet is stopping, or the pod is gone already), and waits for it.
func (w *podWorker) stop(ctx context.Context) {
	w.stopped.Do(func() {
		w.stopCtx = ctx
		close(w.stopCh)
	})
	<-w.done
}

func (w *podWorker) run() {
	defer close(w.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.stopRunners = cancel
	log := w.k.log.With("pod", w.key)

	var retry <-chan time.Time
	started := false
	for {
		select {
		case <-w.updates:
			pod := w.currentPod()
			if pod.DeletionTimestamp != nil {
				w.terminate(w.k.ctx, gracePeriod(pod))
				w.deleteFromAPI(pod)
				w.k.forget(w.key, w)
				return
			}
			if !started {
				started = true
				if err := w.start(ctx); err != nil {
					log.Warn("pod network", "err", err)
					retry = time.After(retryEvery)
				}
				w.notify()
			}
		case <-retry:
			retry = nil
			if err := w.start(ctx); err != nil {
				retry = time.After(retryEvery)
			}
			w.notify()
		case <-w.dirty:
			if err := w.writeStatus(); err != nil {
				log.Warn("pod status", "err", err)
				if retry == nil {
					retry = time.After(retryEvery)
				}
			}
		case <-w.stopCh:
			w.terminate(w.stopCtx, gracePeriod(w.currentPod()))
			return
		}
	}
}

// start creates the pod's network and starts its containers; on a network error it
// leaves the pod Pending for a retry. A retry after success writes the status again.
func (w *podWorker) start(ctx context.Context) error {
	if w.runners != nil {
		return nil
	}
	pod := w.currentPod()
	if len(pod.Spec.InitContainers) > 0 {
		// Never retried: the pod waits with the reason in its status until deleted.
		w.sandboxErr = fmt.Errorf("init containers are not supported by the process kubelet")
		return nil
	}
	sb, err := w.k.net.addPod(ctx)
	if err != nil {
		w.sandboxErr = err
		return err
	}
	w.sandbox, w.sandboxErr = sb, nil
	runners := make([]*containerRunner, len(pod.Spec.Containers))
	for i := range runners {
		runners[i] = newContainerRunner(w, pod, i)
	}
	w.podMu.Lock()
	w.runners = runners
	w.podMu.Unlock()
	for _, r := range runners {
		go r.run(ctx)
	}
	return nil
}

// runner returns the container's runner, nil if it has none (yet). Other goroutines than
// run's call it, hence the lock.
func (w *podWorker) runner(container string) *containerRunner {
	w.podMu.Lock()
	defer w.podMu.Unlock()
	for _, r := range w.runners {
		if r.spec.Name == container {
			return r
		}
	}
	return nil
}

// terminate stops the runners from restarting anything, sends SIGTERM to every process,
// SIGKILL to those still alive after grace (or when ctx ends), then removes the pod's
// network and files.
func (w *podWorker) terminate(ctx context.Context, grace time.Duration) {
	w.stopRunners()
	for _, r := range w.runners {
		r.signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
wait:
	for _, r := range w.runners {
		select {
		case <-r.done:
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	for _, r := range w.runners {
		r.signal(syscall.SIGKILL)
		<-r.done
	}
	if w.runners != nil {
		w.k.net.removePod(context.WithoutCancel(ctx), w.sandbox)
	}
	w.volumes.release()
	_ = os.RemoveAll(w.dir)
}

// gracePeriod is the pod's deletion grace period, else its spec's, else 30s.
func gracePeriod(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// deleteFromAPI finishes a graceful deletion, as a kubelet does once the processes are gone.
func (w *podWorker) deleteFromAPI(pod *corev1.Pod) {
	ctx, cancel := context.WithTimeout(w.k.ctx, 10*time.Second)
	defer cancel()
	err := w.k.opts.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.k.log.Warn("delete pod", "pod", w.key, "err", err)
	}
}

// writeStatus patches the pod's status when it differs from the last one written.
func (w *podWorker) writeStatus() error {
	status := w.status()
	if w.lastWritten != nil && apiequality.Semantic.DeepEqual(*w.lastWritten, status) {
		return nil
	}
	pod := w.currentPod()
	// A merge patch replaces the lists whole, and the uid makes it fail on a pod recreated
	// under the same name.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   status,
	})
	if err != nil {
		return fmt.Errorf("pod status: %w", err)
	}
	ctx, cancel := context.WithTimeout(w.k.ctx, 10*time.Second)
	defer cancel()
	if _, err := w.k.opts.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("pod status: %w", err)
	}
	w.lastWritten = &status
	return nil
}
