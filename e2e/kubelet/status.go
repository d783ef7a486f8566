package kubelet

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// status computes the pod's status from its sandbox and its containers' states, the way
// a kubelet reports it: phase, IPs, the five standard conditions and containerStatuses.
// Only run calls it, so the conditions' transition times need no lock.
func (w *podWorker) status() corev1.PodStatus {
	pod := w.currentPod()
	s := corev1.PodStatus{
		Phase:     corev1.PodPending,
		StartTime: &w.startTime,
		HostIP:    w.k.net.gateway.String(),
		HostIPs:   []corev1.HostIP{{IP: w.k.net.gateway.String()}},
		QOSClass:  pod.Status.QOSClass,
	}
	sandboxReady := w.runners != nil
	if sandboxReady {
		s.PodIP = w.sandbox.ip.String()
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}

	var running, succeeded, failed, ready int
	var notReady []string
	statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for _, r := range w.runners {
		cs := r.status()
		statuses = append(statuses, cs)
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			succeeded++
		case cs.State.Terminated != nil:
			failed++
		}
		if cs.Ready {
			ready++
		} else {
			notReady = append(notReady, cs.Name)
		}
	}
	if !sandboxReady {
		reason, message := "ContainerCreating", ""
		if w.sandboxErr != nil {
			reason, message = "CreatePodSandboxError", w.sandboxErr.Error()
		}
		for _, c := range pod.Spec.Containers {
			statuses = append(statuses, corev1.ContainerStatus{
				Name:  c.Name,
				Image: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
			})
			notReady = append(notReady, c.Name)
		}
	}
	s.ContainerStatuses = statuses

	total := len(pod.Spec.Containers)
	switch {
	case total > 0 && succeeded == total:
		s.Phase = corev1.PodSucceeded
	case total > 0 && succeeded+failed == total:
		s.Phase = corev1.PodFailed
	case running > 0 || sandboxReady && restartsAny(pod.Spec.RestartPolicy, statuses):
		// A container in CrashLoopBackOff keeps a restartable pod Running, as a kubelet does.
		s.Phase = corev1.PodRunning
	}

	containersReady := corev1.ConditionFalse
	reason, message := "ContainersNotReady", "containers with unready status: ["+strings.Join(notReady, " ")+"]"
	if total > 0 && ready == total {
		containersReady, reason, message = corev1.ConditionTrue, "", ""
	}
	s.Conditions = []corev1.PodCondition{
		w.condition(corev1.PodReadyToStartContainers, boolCondition(sandboxReady), "", ""),
		w.condition(corev1.PodInitialized, corev1.ConditionTrue, "", ""),
		w.condition(corev1.PodReady, containersReady, reason, message),
		w.condition(corev1.ContainersReady, containersReady, reason, message),
		w.condition(corev1.PodScheduled, corev1.ConditionTrue, "", ""),
	}
	return s
}

// restartsAny says whether some container has run and will run again.
func restartsAny(policy corev1.RestartPolicy, statuses []corev1.ContainerStatus) bool {
	for _, cs := range statuses {
		if cs.RestartCount > 0 || cs.LastTerminationState.Terminated != nil {
			return policy != corev1.RestartPolicyNever
		}
	}
	return false
}

// condition returns the pod condition, keeping its transition time unless its status changed.
func (w *podWorker) condition(t corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) corev1.PodCondition {
	c, ok := w.conditions[t]
	if !ok || c.Status != status {
		c = corev1.PodCondition{Type: t, Status: status, LastTransitionTime: metav1.Now()}
	}
	c.Reason, c.Message = reason, message
	w.conditions[t] = c
	return c
}

func boolCondition(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}
