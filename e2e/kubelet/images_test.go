package kubelet

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestImageCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        corev1.Container
		bin      string
		args     []string
		errorWas string // the imageError reason, if any
	}{
		{name: "echo defaults", c: corev1.Container{Image: "strait.dev/echo"}, bin: "strait", args: []string{"echo", "--listen=:8080"}},
		{name: "echo port, tag", c: corev1.Container{Image: "strait.dev/echo:v1", Ports: []corev1.ContainerPort{{ContainerPort: 9000}}}, bin: "strait", args: []string{"echo", "--listen=:9000"}},
		{name: "args replace CMD", c: corev1.Container{Image: "strait.dev/echo", Args: []string{"--listen=:1"}}, bin: "strait", args: []string{"echo", "--listen=:1"}},
		{name: "command replaces both", c: corev1.Container{Image: "strait.dev/echo", Command: []string{"/strait", "version"}}, bin: "strait", args: []string{"version"}},
		{name: "command and args", c: corev1.Container{Image: "strait.dev/echo", Command: []string{"strait"}, Args: []string{"echo", "--pod=x"}}, bin: "strait", args: []string{"echo", "--pod=x"}},
		{name: "echo-basic", c: corev1.Container{Image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1"}, bin: "echo-basic", args: []string{}},
		{name: "echo-basic staging by digest", c: corev1.Container{Image: "gcr.io/k8s-staging-gateway-api/echo-basic@sha256:abc"}, bin: "echo-basic", args: []string{}},
		{name: "foreign command", c: corev1.Container{Image: "strait.dev/echo", Command: []string{"/bin/sh"}}, errorWas: "StartError"},
		{name: "unsupported", c: corev1.Container{Image: "docker.io/library/nginx:1.27"}, errorWas: "ErrImageNeverPull"},
		{name: "registry port is not a tag", c: corev1.Container{Image: "localhost:5000/strait.dev/echo"}, errorWas: "ErrImageNeverPull"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, args, err := imageCommand(&tc.c)
			if tc.errorWas != "" {
				var imgErr *imageError
				if !errors.As(err, &imgErr) || imgErr.reason != tc.errorWas {
					t.Fatalf("error %v, want reason %s", err, tc.errorWas)
				}
				return
			}
			if err != nil || bin != tc.bin || !slices.Equal(args, tc.args) {
				t.Errorf("got %s %q (%v), want %s %q", bin, args, err, tc.bin, tc.args)
			}
		})
	}
}
