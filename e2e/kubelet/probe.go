package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Readiness: a container is Ready once its readinessProbe (httpGet or tcpSocket) succeeds,
// else once its first containerPort accepts a TCP connection, else once the port its image
// is known to listen on does (imagePort), else as soon as it runs.
// Until the first success it is probed every firstProbeEvery rather than every
// periodSeconds, so pods become Ready as soon as they listen; afterwards every
// periodSeconds, and failureThreshold failures in a row make it unready again.
// Liveness and startup probes are not run.
const firstProbeEvery = 200 * time.Millisecond

// check is one probe attempt.
type check func(ctx context.Context) error

// probe reports readiness of process generation gen until ctx ends.
func (r *containerRunner) probe(ctx context.Context, gen int, env []string) {
	p := r.spec.ReadinessProbe
	c, err := readinessCheck(r.spec, r.w.sandbox.ip, imagePort(r.spec, env))
	if err != nil {
		r.w.k.log.Warn("readiness probe", "pod", r.w.key, "container", r.spec.Name, "err", err)
		return
	}
	if c == nil {
		r.setReady(gen, true)
		return
	}
	period, timeout, threshold := 10*time.Second, time.Second, 3
	if p != nil {
		sleep(ctx, time.Duration(p.InitialDelaySeconds)*time.Second)
		if p.PeriodSeconds > 0 {
			period = time.Duration(p.PeriodSeconds) * time.Second
		}
		if p.TimeoutSeconds > 0 {
			timeout = time.Duration(p.TimeoutSeconds) * time.Second
		}
		if p.FailureThreshold > 0 {
			threshold = int(p.FailureThreshold)
		}
	}
	ready, failures := false, 0
	for ctx.Err() == nil {
		attempt, cancel := context.WithTimeout(ctx, timeout)
		err := c(attempt)
		cancel()
		switch {
		case err == nil:
			failures = 0
			ready = true
		case ready:
			failures++
			if failures >= threshold {
				ready = false
			}
		}
		r.setReady(gen, ready)
		if ready {
			sleep(ctx, period)
		} else {
			sleep(ctx, firstProbeEvery)
		}
	}
}

// readinessCheck builds the check for a container, nil when it is ready once it runs.
// imagePort is the image's known port, 0 if none.
func readinessCheck(c *corev1.Container, podIP netip.Addr, imagePort int) (check, error) {
	p := c.ReadinessProbe
	switch {
	case p != nil && p.HTTPGet != nil:
		return httpCheck(c, p.HTTPGet, podIP)
	case p != nil && p.TCPSocket != nil:
		port, err := resolvePort(c, p.TCPSocket.Port)
		if err != nil {
			return nil, err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP.String()
		}
		return tcpCheck(net.JoinHostPort(host, strconv.Itoa(port))), nil
	case len(c.Ports) > 0:
		// Also for exec and grpc probes, which a process kubelet does not run.
		return tcpCheck(net.JoinHostPort(podIP.String(), strconv.Itoa(int(c.Ports[0].ContainerPort)))), nil
	case imagePort > 0:
		return tcpCheck(net.JoinHostPort(podIP.String(), strconv.Itoa(imagePort))), nil
	}
	return nil, nil
}

func tcpCheck(addr string) check {
	return func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

func httpCheck(c *corev1.Container, get *corev1.HTTPGetAction, podIP netip.Addr) (check, error) {
	port, err := resolvePort(c, get.Port)
	if err != nil {
		return nil, err
	}
	host := get.Host
	if host == "" {
		host = podIP.String()
	}
	scheme := strings.ToLower(string(get.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := get.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	client := &http.Client{Transport: &http.Transport{
		// As the kubelet: probes do not verify certificates.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, h := range get.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}, nil
}

// resolvePort turns a probe's port, a number or a containerPort's name, into a number.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q is not a port of container %s", port.StrVal, c.Name)
}
