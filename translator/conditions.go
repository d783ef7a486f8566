package translator

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControllerName is the GatewayClass controllerName Strait implements.
const ControllerName = "strait.dev/gateway-controller"

// condError is invalid user input together with the status condition it sets.
type condError struct {
	// Type is the condition type set to False (e.g. ResolvedRefs, Accepted).
	Type   string
	Reason string
	Msg    string
}

func (e *condError) Error() string { return e.Reason + ": " + e.Msg }

func newCondError(condType, reason, format string, args ...any) *condError {
	return &condError{Type: condType, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// setCondition sets a condition with the object's generation. LastTransitionTime is left zero:
// the translator is pure, and the status writer stamps the time of a real transition.
func setCondition(conds *[]metav1.Condition, generation int64, condType string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	c := metav1.Condition{
		Type:               condType,
		Status:             status,
		ObservedGeneration: generation,
		Reason:             reason,
		Message:            msg,
	}
	for i := range *conds {
		if (*conds)[i].Type == condType {
			(*conds)[i] = c
			return
		}
	}
	*conds = append(*conds, c)
}
