package file

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in one file.
type Error struct {
	// File is the file's path as the loader saw it: relative paths stay relative to the
	// working directory.
	File string
	// Line is the 1-based line of the offending field, or of the start of the offending
	// YAML document; 0 when the problem concerns the whole file (it cannot be read, say).
	Line int
	// Err is the problem.
	Err error
}

// Error formats the problem as "file:line: problem", the way compilers do.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

// Unwrap returns the problem.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found by one load, in file and line order.
type ErrorList []*Error

// Error has one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sorted orders the problems by file and line, keeping the discovery order of problems on
// the same line, and returns nil when there are none so that the result can be returned
// as an error.
func (l ErrorList) sorted() error {
	if len(l) == 0 {
		return nil
	}
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	return l
}

// Warning is a problem that does not fail a load: the offending document is skipped or
// adjusted, as the message says.
type Warning struct {
	// File is the file's path, as in Error.
	File string
	// Line is the 1-based line of the start of the document concerned.
	Line int
	// Message says what was ignored or adjusted, and why.
	Message string
}

// String formats the warning as "file:line: message".
func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Message)
}
