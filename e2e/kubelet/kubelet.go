// Package kubelet is a process kubelet for local test clusters: one Node per cluster that
// binds the cluster's pending Pods to itself (no scheduler runs) and runs their containers
// as local processes, each pod in a network namespace of its own on a per-cluster Linux
// bridge, with the pod statuses a real kubelet writes. Deployments become Available,
// Services get EndpointSlices from the real controller, and pod IPs answer from the host
// and from other clusters' pods. It serves pods/log through kube-apiserver.
//
// It runs images it knows as processes (EchoImage, EchoBasicImage, built from source on
// first use); any other image gets a Waiting status naming the ones it supports. It needs
// root, iproute2 (ip) and util-linux (nsenter, unshare, mount). See docs/multicluster.md.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Options configure a Kubelet.
type Options struct {
	// Client talks to the cluster's kube-apiserver with rights over nodes, leases, pods,
	// pods/binding, pods/status, secrets and configmaps.
	Client kubernetes.Interface
	// NodeName is the Node the kubelet registers and binds pods to.
	NodeName string
	// PodCIDR is the cluster's pod network, /24 to /30 (e.g. 10.244.1.0/24). Its first
	// address goes to the bridge and is the node's InternalIP; pods get the next ones.
	PodCIDR netip.Prefix
	// Bridge names the cluster's Linux bridge (at most 11 characters); pod namespaces and
	// host veths are named <Bridge>-<last octet of the pod IP>.
	Bridge string
	// Cluster, when set, is every process's CLUSTER variable unless the container sets it
	// (Strait's echo backend reports it).
	Cluster string
	// ReadyImages are image repositories (any tag) the kubelet does not run but reports
	// Running and Ready, for pods a test needs to be there but never sends traffic to, such
	// as the conformance suite's coredns.
	ReadyImages []string
	// CacheDir holds the built binaries; default ${XDG_CACHE_HOME:-~/.cache}/strait/kubelet.
	CacheDir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Kubelet is a running process kubelet; Stop ends it.
type Kubelet struct {
	opts     Options
	log      *slog.Logger
	net      *network
	lock     *machineLock
	server   *http.Server // pods/log
	port     int
	bins     *binaries
	stateDir string // pods' volumes and logs
	started  metav1.Time

	ctx    context.Context // ends on Stop
	cancel context.CancelFunc
	queue  workqueue.TypedRateLimitingInterface[string]
	pods   corelisters.PodLister
	wg     sync.WaitGroup // node heartbeat and queue worker

	mu      sync.Mutex
	workers map[string]*podWorker // by namespace/name

	stopOnce sync.Once
	stopErr  error
}

// Start sets up the bridge, registers the Node and starts running the cluster's pods.
func Start(ctx context.Context, opts Options) (*Kubelet, error) {
	if opts.Client == nil || opts.NodeName == "" {
		return nil, errors.New("kubelet: Client and NodeName are required")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("kubelet: needs root for network namespaces")
	}
	nw, err := newNetwork(opts.Bridge, opts.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = defaultCacheDir(); err != nil {
			return nil, fmt.Errorf("kubelet: %w", err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	lock, err := lockNetwork(ctx, nw)
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	stateDir, err := os.MkdirTemp("", "strait-kubelet-"+opts.NodeName+"-")
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	if err := nw.setUp(ctx); err != nil {
		lock.release()
		_ = os.RemoveAll(stateDir)
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	k := &Kubelet{
		opts:     opts,
		log:      opts.Logger.With("node", opts.NodeName),
		net:      nw,
		lock:     lock,
		bins:     binariesIn(opts.CacheDir),
		stateDir: stateDir,
		started:  metav1.Now(),
		ctx:      runCtx,
		cancel:   cancel,
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		workers:  map[string]*podWorker{},
	}
	if k.port, err = k.startLogServer(); err != nil {
		_ = k.Stop(ctx)
		return nil, err
	}
	if err := k.registerNode(ctx); err != nil {
		_ = k.Stop(ctx)
		return nil, err
	}
	k.wg.Go(func() { k.heartbeat(runCtx) })

	factory := informers.NewSharedInformerFactory(opts.Client, 0)
	podInformer := factory.Core().V1().Pods()
	k.pods = podInformer.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		_ = k.Stop(ctx)
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		_ = k.Stop(ctx)
		return nil, fmt.Errorf("kubelet: pod informer did not sync: %w", ctx.Err())
	}
	k.wg.Go(k.processQueue)
	k.log.Info("kubelet started", "podCIDR", nw.cidr, "bridge", nw.bridge)
	return k, nil
}

// NodeIP is the node's InternalIP, the bridge's address.
func (k *Kubelet) NodeIP() netip.Addr { return k.net.gateway }

// Stop kills every process the kubelet started (SIGTERM, then SIGKILL after the pod's
// grace period, bounded by ctx), removes every network namespace, veth and the bridge, and
// the pods' files. The pods stay in the API as they were. Calling it again does nothing.
func (k *Kubelet) Stop(ctx context.Context) error {
	k.stopOnce.Do(func() { k.stopErr = k.stop(ctx) })
	return k.stopErr
}

func (k *Kubelet) stop(ctx context.Context) error {
	k.cancel()
	k.queue.ShutDown()
	if k.server != nil {
		_ = k.server.Close()
	}
	k.wg.Wait()

	k.mu.Lock()
	workers := k.workers
	k.workers = map[string]*podWorker{}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.stop(ctx) })
	}
	wg.Wait()

	errs := []error{k.net.tearDown(context.WithoutCancel(ctx))}
	if err := os.RemoveAll(k.stateDir); err != nil {
		errs = append(errs, err)
	}
	k.lock.release()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubelet stop: %w", err)
	}
	return nil
}

func (k *Kubelet) processQueue() {
	for {
		key, shutdown := k.queue.Get()
		if shutdown {
			return
		}
		if err := k.sync(key); err != nil {
			k.log.Warn("sync pod", "pod", key, "err", err)
			k.queue.AddRateLimited(key)
		} else {
			k.queue.Forget(key)
		}
		k.queue.Done(key)
	}
}

// sync brings one pod key to its wanted state: bind it if nobody did, run it if it is
// ours, terminate it if it is being deleted.
func (k *Kubelet) sync(key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil //nolint:nilerr // a malformed key never becomes valid; retrying would loop
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Gone without us seeing a deletionTimestamp (force-deleted): stop its processes.
		k.stopWorker(key, "")
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return k.bind(pod)
	}
	if pod.Spec.NodeName != k.opts.NodeName {
		return nil
	}
	// A pod recreated under the same name is a new pod: the old one's processes go first.
	k.stopWorker(key, pod.UID)

	k.mu.Lock()
	w := k.workers[key]
	if w == nil {
		if pod.DeletionTimestamp == nil && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) {
			k.mu.Unlock()
			return nil // finished before this kubelet started; never rerun
		}
		if k.stopping() {
			k.mu.Unlock()
			return nil
		}
		w = newPodWorker(k, pod)
		k.workers[key] = w
		// Not in k.wg: Stop waits for the queue to drain first, then stops the workers.
		go w.run()
	}
	k.mu.Unlock()
	w.update(pod)
	return nil
}

// stopping says whether Stop has begun.
func (k *Kubelet) stopping() bool { return k.ctx.Err() != nil }

// stopWorker kills the pod worker of key unless it runs the pod with uid keep.
func (k *Kubelet) stopWorker(key string, keep types.UID) {
	k.mu.Lock()
	w := k.workers[key]
	if w == nil || w.uid == keep {
		k.mu.Unlock()
		return
	}
	delete(k.workers, key)
	k.mu.Unlock()
	w.stop(k.ctx)
}

// forget drops a worker that finished its pod's deletion.
func (k *Kubelet) forget(key string, w *podWorker) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.workers[key] == w {
		delete(k.workers, key)
	}
}

// bind plays the scheduler for pods nobody else schedules.
func (k *Kubelet) bind(pod *corev1.Pod) error {
	if pod.DeletionTimestamp != nil {
		return nil
	}
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return nil
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.opts.NodeName},
	}
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	err := k.opts.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound or deleted meanwhile; the informer brings the news
	}
	if err != nil {
		return fmt.Errorf("bind %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
