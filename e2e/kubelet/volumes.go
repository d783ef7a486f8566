package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Volumes: a pod's volumes are directories under the pod's
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
	files, err := w.volumeFiles(ctx, pod, spec)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	for _, f := range files {
		path := filepath.Join(dir, filepath.Clean("/"+f.path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", fmt.Errorf("volume %s: %w", name, err)
		}
		if err := os.WriteFile(path, []byte(f.data), f.mode); err != nil {
			return "", fmt.Errorf("volume %s: %w", name, err)
		}
	}
	if v.prepared == nil {
		v.prepared = map[string]string{}
	}
	v.prepared[name] = dir
	return dir, nil
}

// volumeFile is a file of a volume, at a path relative to the volume's root.
type volumeFile struct {
	path string
	data string
	mode os.FileMode
}

// volumeFiles lists the files of a volume: an emptyDir has none; secret, configMap,
// downwardAPI and projected volumes (the service account's kube-api-access volume among
// them) have their keys' or items' files.
func (w *podWorker) volumeFiles(ctx context.Context, pod *corev1.Pod, spec *corev1.Volume) ([]volumeFile, error) {
	switch {
	case spec.EmptyDir != nil:
		return nil, nil
	case spec.Secret != nil:
		data, err := w.secretData(ctx, pod.Namespace, spec.Secret.SecretName, spec.Secret.Optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, spec.Secret.Items, spec.Secret.DefaultMode)
	case spec.ConfigMap != nil:
		data, err := w.configMapData(ctx, pod.Namespace, spec.ConfigMap.Name, spec.ConfigMap.Optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, spec.ConfigMap.Items, spec.ConfigMap.DefaultMode)
	case spec.DownwardAPI != nil:
		return w.downwardAPIFiles(pod, spec.DownwardAPI.Items, spec.DownwardAPI.DefaultMode)
	case spec.Projected != nil:
		return w.projectedFiles(ctx, pod, spec.Projected)
	}
	return nil, fmt.Errorf("only secret, configMap, downwardAPI, projected and emptyDir volumes are supported")
}

func (w *podWorker) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource) ([]volumeFile, error) {
	var files []volumeFile
	for _, src := range p.Sources {
		var more []volumeFile
		var err error
		switch {
		case src.Secret != nil:
			var data map[string]string
			if data, err = w.secretData(ctx, pod.Namespace, src.Secret.Name, src.Secret.Optional); err == nil {
				more, err = keyFiles(data, src.Secret.Items, p.DefaultMode)
			}
		case src.ConfigMap != nil:
			var data map[string]string
			if data, err = w.configMapData(ctx, pod.Namespace, src.ConfigMap.Name, src.ConfigMap.Optional); err == nil {
				more, err = keyFiles(data, src.ConfigMap.Items, p.DefaultMode)
			}
		case src.DownwardAPI != nil:
			more, err = w.downwardAPIFiles(pod, src.DownwardAPI.Items, p.DefaultMode)
		case src.ServiceAccountToken != nil:
			more, err = w.tokenFile(ctx, pod, src.ServiceAccountToken, p.DefaultMode)
		default:
			err = fmt.Errorf("projected sources other than secret, configMap, downwardAPI and serviceAccountToken are not supported")
		}
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}

// tokenFile asks the API for a token of the pod's service account, bound to the pod.
func (w *podWorker) tokenFile(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection, mode *int32) ([]volumeFile, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tok, err := w.k.opts.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	return []volumeFile{{path: src.Path, data: tok.Status.Token, mode: fileMode(nil, mode)}}, nil
}

func (w *podWorker) downwardAPIFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode *int32) ([]volumeFile, error) {
	var files []volumeFile
	for _, it := range items {
		if it.FieldRef == nil {
			return nil, fmt.Errorf("downwardAPI %s: only fieldRef is supported", it.Path)
		}
		v, err := w.fieldValue(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		files = append(files, volumeFile{path: it.Path, data: v, mode: fileMode(it.Mode, mode)})
	}
	return files, nil
}

// keyFiles is each key (or each item's key at its path) as a file.
func keyFiles(data map[string]string, items []corev1.KeyToPath, defaultMode *int32) ([]volumeFile, error) {
	if items == nil {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	files := make([]volumeFile, 0, len(items))
	for _, it := range items {
		value, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("key %q not found", it.Key)
		}
		files = append(files, volumeFile{path: it.Path, data: value, mode: fileMode(it.Mode, defaultMode)})
	}
	return files, nil
}

// fileMode is the item's mode, else the volume's default, else 0644.
func fileMode(item, defaultMode *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item)
	case defaultMode != nil:
		return os.FileMode(*defaultMode)
	}
	return 0o644
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
