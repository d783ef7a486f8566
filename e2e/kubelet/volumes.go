package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Volumes: a pod's secret, configMap and emptyDir volumes are directories under the pod's
// state directory, written once when a container first needs them (later changes to the
// Secret or ConfigMap are not propagated). A container that mounts volumes runs in a
// private mount namespace (unshare --mount --propagation private) where each one is
// bind-mounted at its mountPath, so the process sees the files where the manifest says
// and the host's mount table never changes. A mountPath that does not exist on the host
// is created empty (the bind needs a mount point) and removed when no pod uses it.

// bindMount is one volume mount of a container.
type bindMount struct {
	src, dst string
	readOnly bool
}

// podVolumes holds a pod's prepared volumes and the mount points its containers hold.
type podVolumes struct {
	dir string

	mu       sync.Mutex
	prepared map[string]string // volume name -> directory
	held     []string          // mount points acquired, released with the pod
}

// mounts prepares the volumes a container mounts and their mount points.
func (w *podWorker) mounts(ctx context.Context, c *corev1.Container) ([]bindMount, error) {
	if len(c.VolumeMounts) == 0 {
		return nil, nil
	}
	pod := w.currentPod()
	v := &w.volumes
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []bindMount
	for _, m := range c.VolumeMounts {
		dir, err := w.prepareVolume(ctx, pod, m.Name)
		if err != nil {
			return nil, err
		}
		src := filepath.Join(dir, m.SubPath)
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		held, err := acquireMountPoint(m.MountPath, !st.IsDir())
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		v.held = append(v.held, held...)
		out = append(out, bindMount{src: src, dst: m.MountPath, readOnly: m.ReadOnly})
	}
	return out, nil
}

// prepareVolume writes a volume's files once; v.mu is held.
func (w *podWorker) prepareVolume(ctx context.Context, pod *corev1.Pod, name string) (string, error) {
	v := &w.volumes
	if dir, ok := v.prepared[name]; ok {
		return dir, nil
	}
	var spec *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			spec = &pod.Spec.Volumes[i]
		}
	}
	if spec == nil {
		return "", fmt.Errorf("volume %s is not in the pod", name)
	}
	dir := filepath.Join(v.dir, name)
	var (
		data  map[string]string
		items []corev1.KeyToPath
		mode  *int32
		err   error
	)
	switch {
	case spec.EmptyDir != nil:
	case spec.Secret != nil:
		data, err = w.secretData(ctx, pod.Namespace, spec.Secret.SecretName, spec.Secret.Optional)
		items, mode = spec.Secret.Items, spec.Secret.DefaultMode
	case spec.ConfigMap != nil:
		data, err = w.configMapData(ctx, pod.Namespace, spec.ConfigMap.Name, spec.ConfigMap.Optional)
		items, mode = spec.ConfigMap.Items, spec.ConfigMap.DefaultMode
	default:
		return "", fmt.Errorf("volume %s: only secret, configMap and emptyDir volumes are supported", name)
	}
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if err := writeVolume(dir, data, items, mode); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if v.prepared == nil {
		v.prepared = map[string]string{}
	}
	v.prepared[name] = dir
	return dir, nil
}

// writeVolume writes each key (or each item's key at its path) as a file.
func writeVolume(dir string, data map[string]string, items []corev1.KeyToPath, defaultMode *int32) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if items == nil {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		value, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		mode := os.FileMode(0o644)
		if it.Mode != nil {
			mode = os.FileMode(*it.Mode) //nolint:gosec // file modes are small
		} else if defaultMode != nil {
			mode = os.FileMode(*defaultMode) //nolint:gosec // file modes are small
		}
		path := filepath.Join(dir, filepath.Clean("/"+it.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(value), mode); err != nil {
			return err
		}
	}
	return nil
}

// release gives back the pod's mount points.
func (v *podVolumes) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	releaseMountPoints(v.held)
	v.held = nil
}

// mountScript is the shell script that binds the mounts, then execs "$@".
func mountScript(mounts []bindMount) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, m := range mounts {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shellQuote(m.src), shellQuote(m.dst))
		if m.readOnly {
			fmt.Fprintf(&b, "mount -o remount,bind,ro %s\n", shellQuote(m.dst))
		}
	}
	b.WriteString(`exec "$@"` + "\n")
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Mount points the kubelets of this process created on the host, with the number of
// mounts that use each: a path is removed when its count drops to zero. Shared by all
// kubelets since two clusters' pods may mount the same path.
var mountPoints = struct {
	sync.Mutex
	refs map[string]int
}{refs: map[string]int{}}

// acquireMountPoint makes sure dst exists (a directory, or an empty file if file) and
// returns the paths it created or shares, for releaseMountPoints.
func acquireMountPoint(dst string, file bool) ([]string, error) {
	dst = filepath.Clean(dst)
	if !filepath.IsAbs(dst) {
		return nil, fmt.Errorf("mountPath %q is not absolute", dst)
	}
	mountPoints.Lock()
	defer mountPoints.Unlock()
	var chain []string // from the root down
	for p := dst; p != "/"; p = filepath.Dir(p) {
		chain = append([]string{p}, chain...)
	}
	var held []string
	for i, p := range chain {
		if mountPoints.refs[p] > 0 {
			mountPoints.refs[p]++
			held = append(held, p)
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		var err error
		if file && i == len(chain)-1 {
			err = os.WriteFile(p, nil, 0o644)
		} else {
			err = os.Mkdir(p, 0o755)
		}
		if err != nil {
			releaseMountPointsLocked(held)
			return nil, fmt.Errorf("mount point %s: %w", p, err)
		}
		mountPoints.refs[p] = 1
		held = append(held, p)
	}
	return held, nil
}

func releaseMountPoints(held []string) {
	mountPoints.Lock()
	defer mountPoints.Unlock()
	releaseMountPointsLocked(held)
}

// releaseMountPointsLocked drops held (listed parents first) deepest first, removing the
// paths no mount uses any more.
func releaseMountPointsLocked(held []string) {
	for i := len(held) - 1; i >= 0; i-- {
		p := held[i]
		mountPoints.refs[p]--
		if mountPoints.refs[p] <= 0 {
			delete(mountPoints.refs, p)
			_ = os.Remove(p)
		}
	}
}
