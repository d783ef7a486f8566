//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// tool is a program the bench runs and the Debian package that ships it.
type tool struct{ bin, pkg string }

var tools = []tool{
	{"haproxy", "haproxy"},
	{"nginx", "nginx"},
	{"wrk", "wrk"},
	{"h2load", "nghttp2-client"},
	{"taskset", "util-linux"},
}

// ensurePath puts the sbin directories (haproxy and nginx live in /usr/sbin) on PATH.
func ensurePath() {
	path := os.Getenv("PATH")
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+dir+":") {
			path += ":" + dir
		}
	}
	_ = os.Setenv("PATH", path)
}

// ensureTools installs the Debian packages of missing tools with apt-get, non-interactively,
// and only when something is missing.
func ensureTools(install bool) error {
	ensurePath()
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return fmt.Errorf("missing tools; install the Debian packages %s (or run without --no-install)", strings.Join(missing, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("missing Debian packages %s and no apt-get to install them", strings.Join(missing, " "))
	}
	apt := []string{"apt-get"}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return fmt.Errorf("missing Debian packages %s; installing them needs root", strings.Join(missing, " "))
		}
		apt = []string{"sudo", "-n", "apt-get"}
	}
	logf("installing missing Debian packages: %s", strings.Join(missing, " "))
	opts := []string{"-q", "-y", "-o", "Dpkg::Lock::Timeout=300",
		"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	for _, args := range [][]string{
		append(append([]string{}, opts...), "update"),
		append(append(append([]string{}, opts...), "install", "--no-install-recommends"), missing...),
	} {
		cmd := exec.Command(apt[0], append(apt[1:], args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[len(opts)], err)
		}
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("%s still missing after installing %s", t.bin, t.pkg)
		}
	}
	return nil
}
