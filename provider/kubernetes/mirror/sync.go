package mirror

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/strait-gw/strait/translator"
)

// ownedSelector selects the objects the mirror writer owns.
var ownedSelector = translator.ManagedByLabel + "=" + translator.ManagedByValue

// kindOps are the operations and comparisons of one kind of mirror object.
type kindOps[T metav1.Object] struct {
	kind string
	// list returns the objects labeled as Strait's, in every namespace.
	list   func(ctx context.Context) ([]T, error)
	create func(ctx context.Context, obj T) (T, error)
	update func(ctx context.Context, obj T) (T, error)
	delete func(ctx context.Context, namespace, name string, opts metav1.DeleteOptions) error
	// same reports whether live has every field Strait sets as want has it.
	same func(live, want T) bool
	// apply returns a copy of live with the fields Strait sets taken from want.
	apply func(live, want T) T
	// recreate reports whether live differs from want in a field that cannot be updated.
	recreate func(live, want T) bool
	// syncStatus brings the status of the written object in line with want's; nil when the
	// kind's status is not Strait's to write.
	syncStatus func(ctx context.Context, written, want T) (bool, error)
}

// syncKind creates, updates and deletes the objects of one kind so that the cluster's objects
// labeled as Strait's are exactly want.
func syncKind[T metav1.Object](ctx context.Context, m *metrics, ops kindOps[T], want []T) error {
	live, err := ops.list(ctx)
	if err != nil {
		return &listError{kind: ops.kind, err: err}
	}
	byName := make(map[types.NamespacedName]T, len(live))
	for _, l := range live {
		// The list selected by label; checked again, as this decides what may be deleted.
		if l.GetLabels()[translator.ManagedByLabel] == translator.ManagedByValue {
			byName[types.NamespacedName{Namespace: l.GetNamespace(), Name: l.GetName()}] = l
		}
	}
	var errs []error
	for _, wo := range want {
		key := types.NamespacedName{Namespace: wo.GetNamespace(), Name: wo.GetName()}
		l, exists := byName[key]
		delete(byName, key)
		action, err := apply(ctx, ops, l, exists, wo)
		m.count(ops.kind, action, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", ops.kind, key, err))
		}
	}
	// What is left is Strait's and no longer wanted: the export, the Service or the exporting
	// cluster went away.
	for key, l := range byName {
		uid := l.GetUID()
		err := ops.delete(ctx, key.Namespace, key.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// Gone already, or replaced by a new object the next reconcile judges.
			err = nil
		}
		m.count(ops.kind, actionDeleted, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("deleting %s %s: %w", ops.kind, key, err))
		}
	}
	return errors.Join(errs...)
}

// apply makes one wanted object exist as wanted, given the live one if it exists.
func apply[T metav1.Object](ctx context.Context, ops kindOps[T], live T, exists bool, want T) (string, error) {
	action := actionUnchanged
	written := live
	var err error
	switch {
	case exists && ops.recreate(live, want):
		uid := live.GetUID()
		err = ops.delete(ctx, live.GetNamespace(), live.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return actionError, fmt.Errorf("deleting to recreate: %w", err)
		}
		fallthrough
	case !exists:
		written, err = ops.create(ctx, want)
		if apierrors.IsAlreadyExists(err) {
			// An object without Strait's label has the name (the Input did not show it yet):
			// it is not Strait's to change.
			return actionNameTaken, nil
		}
		action = actionCreated
	case !ops.same(live, want):
		written, err = ops.update(ctx, ops.apply(live, want))
		action = actionUpdated
	}
	if err != nil {
		return actionError, err
	}
	if ops.syncStatus != nil {
		changed, err := ops.syncStatus(ctx, written, want)
		if err != nil {
			return actionError, fmt.Errorf("status: %w", err)
		}
		if changed && action == actionUnchanged {
			action = actionUpdated
		}
	}
	return action, nil
}

// count counts one object's action, or an error.
func (m *metrics) count(kind, action string, err error) {
	if err != nil {
		action = actionError
	}
	m.writes.WithLabelValues(kind, action).Inc()
}

// listError is a failed list of a kind's objects.
type listError struct {
	kind string
	err  error
}

func (e *listError) Error() string { return fmt.Sprintf("listing %ss: %v", e.kind, e.err) }
func (e *listError) Unwrap() error { return e.err }

// isMissingKind reports whether err says the cluster does not serve the kind (its CRD is not
// installed): a list answered 404.
func isMissingKind(err error) bool {
	var le *listError
	return errors.As(err, &le) && (apierrors.IsNotFound(le.err) || meta.IsNoMatchError(le.err))
}
