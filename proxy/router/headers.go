package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"golang.org/x/net/http/httpguts"
)

// HeaderModifier changes request or response headers as Envoy's headers_to_add and
// headers_to_remove do: level by level, removals first, then additions in order. The zero
// value changes nothing.
type HeaderModifier struct {
	ops []headerOp
}

// headerAction is what one operation does; the additions are Envoy's append actions.
type headerAction uint8

const (
	headerRemove            headerAction = iota
	headerAppend                         // APPEND_IF_EXISTS_OR_ADD
	headerAddIfAbsent                    // ADD_IF_ABSENT
	headerOverwrite                      // OVERWRITE_IF_EXISTS_OR_ADD
	headerOverwriteIfExists              // OVERWRITE_IF_EXISTS
)

type headerOp struct {
	action headerAction
	key    string // canonical
	value  string
}

// Fields are header fields a HeaderModifier can change: net/http's (see Apply) or those of
// the proxy's own HTTP/1.1 codec. Keys are canonical.
type Fields interface {
	Has(key string) bool
	Add(key, value string)
	Set(key, value string)
	Del(key string)
}

// Apply changes h in place.
func (m HeaderModifier) Apply(h http.Header) { m.ApplyFields(netHeader(h)) }

// ApplyFields changes f in place.
func (m HeaderModifier) ApplyFields(f Fields) {
	for _, op := range m.ops {
		switch op.action {
		case headerRemove:
			f.Del(op.key)
		case headerAppend:
			f.Add(op.key, op.value)
		case headerAddIfAbsent:
			if !f.Has(op.key) {
				f.Add(op.key, op.value)
			}
		case headerOverwrite:
			f.Set(op.key, op.value)
		case headerOverwriteIfExists:
			if f.Has(op.key) {
				f.Set(op.key, op.value)
			}
		}
	}
}

// netHeader is an http.Header as Fields. Keys are canonical already: the map is used
// directly.
type netHeader http.Header

// Has reports whether the field is present.
func (h netHeader) Has(key string) bool { return len(h[key]) > 0 }

// Add appends a value.
func (h netHeader) Add(key, value string) { h[key] = append(h[key], value) }

// Set replaces the values.
func (h netHeader) Set(key, value string) { h[key] = []string{value} }

// Del removes the field.
func (h netHeader) Del(key string) { delete(h, key) }

// joinHeaderOps concatenates the operations of several levels into one modifier.
func joinHeaderOps(levels ...[]headerOp) HeaderModifier {
	var ops []headerOp
	for _, l := range levels {
		ops = append(ops, l...)
	}
	return HeaderModifier{ops: ops}
}

// compileHeaders compiles one level's headers to add and remove; dir ("request" or
// "response") names the fields in errors.
func compileHeaders(dir string, add []*corev3.HeaderValueOption, remove []string) ([]headerOp, error) {
	ops := make([]headerOp, 0, len(add)+len(remove))
	for i, name := range remove {
		key, err := modifiableHeader(name)
		if err != nil {
			return nil, fmt.Errorf("%s_headers_to_remove[%d]: %w", dir, i, err)
		}
		ops = append(ops, headerOp{action: headerRemove, key: key})
	}
	for i, o := range add {
		op, ok, err := compileHeaderValueOption(o)
		if err != nil {
			return nil, fmt.Errorf("%s_headers_to_add[%d]: %w", dir, i, err)
		}
		if ok {
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// compileHeaderValueOption compiles one header to add; ok is false for an empty value that
// Envoy drops (keep_empty_value unset).
func compileHeaderValueOption(o *corev3.HeaderValueOption) (op headerOp, ok bool, err error) {
	if err := checkFields(o, "header", "append", "append_action", "keep_empty_value"); err != nil {
		return op, false, err
	}
	h := o.GetHeader()
	if err := checkFields(h, "key", "value", "raw_value"); err != nil {
		return op, false, fmt.Errorf("header: %w", err)
	}
	if op.key, err = modifiableHeader(h.GetKey()); err != nil {
		return op, false, err
	}
	value := h.GetValue()
	if h.GetRawValue() != nil {
		value = string(h.GetRawValue())
	}
	if op.value, err = literalHeaderValue(value); err != nil {
		return op, false, fmt.Errorf("header %q: %w", h.GetKey(), err)
	}
	if !httpguts.ValidHeaderFieldValue(op.value) {
		return op, false, fmt.Errorf("header %q: invalid value %q", h.GetKey(), op.value)
	}
	if op.action, err = appendAction(o); err != nil {
		return op, false, err
	}
	return op, op.value != "" || o.GetKeepEmptyValue(), nil
}

func appendAction(o *corev3.HeaderValueOption) (headerAction, error) {
	// Control planes still send the deprecated append, which Envoy honors when append_action
	// is left at its default.
	if appendFlag := o.GetAppend(); appendFlag != nil { //nolint:staticcheck // the deprecated append must still be honored
		if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			return 0, errors.New("append and append_action are both set")
		}
		if appendFlag.GetValue() {
			return headerAppend, nil
		}
		return headerOverwrite, nil
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		return headerAppend, nil
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return headerAddIfAbsent, nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		return headerOverwrite, nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return headerOverwriteIfExists, nil
	}
	return 0, fmt.Errorf("unknown append_action %v", o.GetAppendAction())
}

// literalHeaderValue resolves Envoy's substitution format of a header value: "%%" is a
// literal "%", and any other "%" starts a command such as %DOWNSTREAM_REMOTE_ADDRESS%, which
// the proxy does not evaluate.
func literalHeaderValue(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("substitution formatter in %q is not supported (write %%%% for a literal %%)", v)
	}
	return b.String(), nil
}

// modifiableHeader returns the canonical key of a header that routes may add or remove.
// Like Envoy, it refuses pseudo-headers and Host, which only host_rewrite changes.
func modifiableHeader(name string) (string, error) {
	switch {
	case strings.HasPrefix(name, ":") || strings.EqualFold(name, "host"):
		return "", fmt.Errorf("header %q cannot be modified", name)
	case !httpguts.ValidHeaderFieldName(name):
		return "", fmt.Errorf("invalid header name %q", name)
	}
	return textproto.CanonicalMIMEHeaderKey(name), nil
}
