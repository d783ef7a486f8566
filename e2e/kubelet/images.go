package kubelet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// EchoPodSpec is a pod spec running Strait's echo backend (EchoImage) on container port 8080,
// named "http", with the variables that make it name its pod and namespace (POD_NAME and
// NAMESPACE from the pod), and env added after them. It stops within 2 seconds.
func EchoPodSpec(env ...corev1.EnvVar) corev1.PodSpec {
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To(int64(2)),
		Containers: []corev1.Container{{
			Name:  "echo",
			Image: EchoImage + ":latest",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			Env: append([]corev1.EnvVar{
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			}, env...),
		}},
	}
}

// Images the kubelet runs, by repository (any tag or digest).
const (
	// EchoImage runs Strait's echo backend, `strait echo` (e2e/echo): ENTRYPOINT
	// ["/strait", "echo"], CMD ["--listen=:PORT"] with the container's first port (8080
	// without one). It reports the CLUSTER, NAMESPACE, POD_NAME and SERVICE_NAME variables.
	EchoImage = "strait.dev/echo"
	// EchoBasicImage runs the Gateway API conformance echo server, built from
	// sigs.k8s.io/gateway-api/conformance v1.6.3 (hack/echo-basic): ENTRYPOINT
	// ["/echo-basic"]. It listens on HTTP_PORT (3000) and reports POD_NAME, NAMESPACE,
	// SERVICE_NAME and INGRESS_NAME. The conformance manifests name it so.
	EchoBasicImage = "registry.k8s.io/gateway-api/echo-basic"
	// EchoBasicStagingImage is the same server under its staging name.
	EchoBasicStagingImage = "gcr.io/k8s-staging-gateway-api/echo-basic"
)

// echoBasicVersion is the conformance module hack/echo-basic builds; it names the cache entry.
const echoBasicVersion = "v1.6.3"

// supportedImages is what an unsupported image's error message lists.
var supportedImages = strings.Join([]string{EchoImage, EchoBasicImage, EchoBasicStagingImage}, ", ")

// imageError is a container whose image cannot run as a process; it becomes the
// container's Waiting reason instead of failing the kubelet.
type imageError struct {
	reason, message string
}

func (e *imageError) Error() string { return e.reason + ": " + e.message }

// process is what a container runs: a binary and its arguments.
type process struct {
	path string
	args []string
}

// resolveImage turns a container into a process, building its binary if needed.
func (b *binaries) resolveImage(ctx context.Context, c *corev1.Container) (process, error) {
	bin, args, err := imageCommand(c)
	if err != nil {
		return process{}, err
	}
	p, err := b.path(ctx, bin)
	if err != nil {
		return process{}, err
	}
	return process{path: p, args: args}, nil
}

// imageCommand is the binary a container runs and its arguments, with Docker's rules for
// command (replaces ENTRYPOINT, and CMD unless args are given) and args (replace CMD).
func imageCommand(c *corev1.Container) (bin string, args []string, err error) {
	var entrypoint, cmd []string
	switch repository(c.Image) {
	case EchoImage:
		bin, entrypoint = "strait", []string{"echo"}
		port := int32(8080)
		if len(c.Ports) > 0 {
			port = c.Ports[0].ContainerPort
		}
		cmd = []string{"--listen=:" + strconv.Itoa(int(port))}
	case EchoBasicImage, EchoBasicStagingImage:
		bin = "echo-basic"
	default:
		return "", nil, &imageError{
			reason:  "ErrImageNeverPull",
			message: fmt.Sprintf("image %q cannot run as a process on this node; supported images: %s", c.Image, supportedImages),
		}
	}
	args = append(slices.Clone(entrypoint), cmd...)
	if len(c.Command) > 0 {
		if name := c.Command[0]; name != bin && name != "/"+bin {
			return "", nil, &imageError{
				reason:  "StartError",
				message: fmt.Sprintf("image %q holds only /%s; command %q is not in it", c.Image, bin, name),
			}
		}
		args = slices.Clone(c.Command[1:])
	}
	if len(c.Args) > 0 {
		if len(c.Command) == 0 {
			args = slices.Clone(entrypoint)
		}
		args = append(args, c.Args...)
	}
	return bin, args, nil
}

// imagePort is the port an image's process listens on when the container declares no
// port (the conformance manifests declare none), so that readiness waits for it; 0 when
// unknown. env is the process's environment.
func imagePort(c *corev1.Container, env []string) int {
	lookup := func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v
			}
		}
		return ""
	}
	switch repository(c.Image) {
	case EchoImage:
		if len(c.Command) == 0 && len(c.Args) == 0 {
			return 8080 // the image's CMD
		}
	case EchoBasicImage, EchoBasicStagingImage:
		if lookup("TCP_ECHO_SERVER") != "" || lookup("UDP_ECHO_SERVER") != "" {
			return 0
		}
		if p, err := strconv.Atoi(lookup("HTTP_PORT")); err == nil {
			return p
		}
		return 3000
	}
	return 0
}

// repository strips an image reference's tag and digest.
func repository(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// binaries builds the programs images run, on first use, into a cache directory shared by
// every kubelet of the process.
type binaries struct {
	dir string

	mu    sync.Mutex
	built map[string]string
}

var (
	sharedBinariesMu sync.Mutex
	sharedBinaries   = map[string]*binaries{}
)

// binariesIn returns the process-wide builder for a cache directory.
func binariesIn(dir string) *binaries {
	sharedBinariesMu.Lock()
	defer sharedBinariesMu.Unlock()
	b := sharedBinaries[dir]
	if b == nil {
		b = &binaries{dir: dir, built: map[string]string{}}
		sharedBinaries[dir] = b
	}
	return b
}

// Prepare builds the binaries of every supported image into cacheDir (empty: the default
// cache), so that the first pods start at once rather than after minutes of building on
// a fresh machine. Kubelets build what is missing on first use anyway.
func Prepare(ctx context.Context, cacheDir string) error {
	if cacheDir == "" {
		var err error
		if cacheDir, err = defaultCacheDir(); err != nil {
			return err
		}
	}
	b := binariesIn(cacheDir)
	for _, bin := range []string{"strait", "echo-basic"} {
		if _, err := b.path(ctx, bin); err != nil {
			return err
		}
	}
	return nil
}

// StraitBinary returns the `strait` binary built from this source tree into the default
// cache, the one EchoImage pods run, building it if this process has not yet (Prepare does
// too). Tests run it as the controller and the proxies, so that they build it once.
func StraitBinary(ctx context.Context) (string, error) {
	dir, err := defaultCacheDir()
	if err != nil {
		return "", err
	}
	return binariesIn(dir).path(ctx, "strait")
}

// defaultCacheDir is ${XDG_CACHE_HOME:-~/.cache}/strait/kubelet.
func defaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(dir, "strait", "kubelet"), nil
}

// path returns the binary's path, building it if this process has not yet. strait is
// rebuilt once per process (go build makes that cheap when nothing changed) so tests
// always run the working tree's code; echo-basic is pinned, so it is built once per cache.
// A failed build is not remembered: the next pod tries again.
func (b *binaries) path(ctx context.Context, name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.built[name]; ok {
		return p, nil
	}
	root, err := sourceRoot()
	if err != nil {
		return "", err
	}
	var out string
	switch name {
	case "strait":
		// One per source tree: tests of another worktree running at the same time rebuild
		// theirs from other code.
		tree := sha256.Sum256([]byte(root))
		out = filepath.Join(b.dir, "strait-"+hex.EncodeToString(tree[:4]), "strait")
		err = goBuild(ctx, root, out, "./cmd/strait")
	case "echo-basic":
		out = filepath.Join(b.dir, "echo-basic-"+echoBasicVersion, "echo-basic")
		if _, statErr := os.Stat(out); statErr != nil {
			err = goBuild(ctx, filepath.Join(root, "hack", "echo-basic"), out, "sigs.k8s.io/gateway-api/conformance/echo-basic")
		}
	default:
		err = fmt.Errorf("no recipe for binary %q", name)
	}
	if err != nil {
		return "", err
	}
	b.built[name] = out
	return out, nil
}

// goBuild builds pkg in module directory dir into out, through a temporary file renamed
// into place so that another test process never runs a half-written binary.
func goBuild(ctx context.Context, dir, out, pkg string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build %s: %w", path.Base(out), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("build %s: %w", path.Base(out), err)
	}
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmp.Name()) }()

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w: %s", pkg, dir, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("build %s: %w", path.Base(out), err)
	}
	return nil
}

// sourceRoot is the Strait source tree this package was compiled from, where the
// binaries are built.
func sourceRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("source tree: no caller information")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte("module github.com/strait-gw/strait\n")) {
		return "", fmt.Errorf("source tree: %s is not Strait's module root (built with -trimpath?)", root)
	}
	return root, nil
}
