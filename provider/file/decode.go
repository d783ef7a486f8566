package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	sigsjson "sigs.k8s.io/json"
)

// decodeStrict decodes a document into obj the way the API server does (case-sensitive
// field names, unknown fields rejected) and returns every problem, each at the line of the
// offending field when it can be found and at the document's first line otherwise.
func decodeStrict(root *yaml.Node, value any, obj any) []*lineError {
	data, err := json.Marshal(value)
	if err != nil {
		return []*lineError{{line: root.Line, err: fmt.Errorf("convert to JSON: %w", err)}}
	}
	strict, err := sigsjson.UnmarshalStrict(data, obj, sigsjson.DisallowUnknownFields)
	if err != nil {
		return []*lineError{typeError(root, data, obj, err)}
	}
	errs := make([]*lineError, 0, len(strict))
	for _, e := range strict {
		line := root.Line
		var fe sigsjson.FieldError
		if errors.As(e, &fe) {
			line = lineOf(root, fe.FieldPath())
		}
		errs = append(errs, &lineError{line: line, err: e})
	}
	return errs
}

// typeError locates a decoding error. sigs.k8s.io/json does not export the type of its
// type errors, so the data is decoded again with encoding/json, whose UnmarshalTypeError
// names the field (without list indices); the first node at that path holding the wrong
// kind of value is the culprit. Errors of other kinds, such as those of the API types' own
// UnmarshalJSON methods, are reported at the document's first line.
func typeError(root *yaml.Node, data []byte, obj any, err error) *lineError {
	var te *json.UnmarshalTypeError
	fresh := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
	if !errors.As(json.Unmarshal(data, fresh), &te) || te.Field == "" {
		return &lineError{line: root.Line, err: err}
	}
	kind, _, _ := strings.Cut(te.Value, " ")
	path, line, ok := findKind(root, te.Field, kind)
	if !ok {
		return &lineError{line: root.Line, err: err}
	}
	return &lineError{line: line, err: fmt.Errorf("%s: cannot unmarshal %s into %s", strings.TrimPrefix(path, "."), te.Value, te.Type)}
}

// findKind finds the first node at path (dot-separated, without list indices: every item of
// a list is searched) whose JSON kind is kind, and returns its full path with indices and
// its line.
func findKind(n *yaml.Node, path, kind string) (string, int, bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path == "" && jsonKind(n) == kind {
		return "", n.Line, true
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if p, line, ok := findKind(item, path, kind); ok {
				return fmt.Sprintf("[%d]%s", i, p), line, true
			}
		}
	case yaml.MappingNode:
		for i := 0; path != "" && i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !keyPrefixes(path, k.Value) {
				continue
			}
			rest := strings.TrimPrefix(path[len(k.Value):], ".")
			if p, line, ok := findKind(n.Content[i+1], rest, kind); ok {
				return "." + k.Value + p, line, true
			}
		}
	}
	return "", 0, false
}

// jsonKind names the JSON kind of a node's value the way encoding/json's
// UnmarshalTypeError.Value does.
func jsonKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "array"
	case yaml.MappingNode:
		return "object"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "bool"
	case "!!null":
		return "null"
	default:
		return "string"
	}
}
