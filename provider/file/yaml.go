package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// maxNodes bounds the size of one document once aliases are expanded, so that a
// "billion laughs" document fails instead of exhausting memory.
const maxNodes = 1 << 20

// lineError is a problem at a line of the file being parsed.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// fileError turns a problem found in file into an Error, at the line a *lineError carries or
// else at line.
func fileError(file string, line int, err error) *Error {
	if le, ok := errors.AsType[*lineError](err); ok {
		line, err = le.line, le.err
	}
	return &Error{File: file, Line: line, Err: err}
}

// yamlSyntaxLine matches the position yaml.v3 puts in its syntax errors.
var yamlSyntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocuments parses a multi-document YAML stream and returns the root node of each
// non-empty document. A syntax error ends the stream: the documents before it are returned
// together with a *lineError.
func parseDocuments(data []byte) ([]*yaml.Node, error) {
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			if m := yamlSyntaxLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ := strconv.Atoi(m[1])
				return docs, &lineError{line: line, err: errors.New(m[2])}
			}
			return docs, fmt.Errorf("parse YAML: %w", err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue // a document holding only comments, or nothing
		}
		docs = append(docs, root)
	}
}

// toJSONValue converts a YAML node into the value encoding/json would decode from the
// equivalent JSON: maps with string keys, slices, strings, numbers, booleans and nil.
// Unlike decoding with yaml.v3 into an interface, it keeps timestamps as the strings they
// are written as (the API types decide what a string means), and it reports duplicate
// keys, which JSON decoding could no longer see.
func toJSONValue(n *yaml.Node) (any, error) {
	c := converter{}
	return c.value(n)
}

type converter struct{ nodes int }

func (c *converter) value(n *yaml.Node) (any, error) {
	if c.nodes++; c.nodes > maxNodes {
		return nil, &lineError{line: n.Line, err: fmt.Errorf("document has more than %d nodes once aliases are expanded", maxNodes)}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.AliasNode:
		return c.value(n.Alias)
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := c.value(item)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		if err := c.mapping(n, m, map[string]int{}); err != nil {
			return nil, err
		}
		return m, nil
	default:
		return c.scalar(n)
	}
}

// mapping adds the pairs of a mapping node to m. Keys written in the mapping win over keys
// brought in by a merge key (<<), as YAML specifies; lines remembers where each written key
// was seen, to report duplicates.
func (c *converter) mapping(n *yaml.Node, m map[string]any, lines map[string]int) error {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return &lineError{line: k.Line, err: errors.New("mapping keys must be scalars")}
		}
		if first, dup := lines[k.Value]; dup {
			return &lineError{line: k.Line, err: fmt.Errorf("mapping key %q already defined at line %d", k.Value, first)}
		}
		lines[k.Value] = k.Line
		val, err := c.value(v)
		if err != nil {
			return err
		}
		m[k.Value] = val
	}
	for _, merge := range merges {
		if err := c.merge(merge, m); err != nil {
			return err
		}
	}
	return nil
}

// merge adds to m the keys of the mapping (or sequence of mappings) a merge key refers to,
// except those m already has.
func (c *converter) merge(n *yaml.Node, m map[string]any) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	sources := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		sources = n.Content
	}
	for _, src := range sources {
		if src.Kind == yaml.AliasNode {
			src = src.Alias
		}
		if src.Kind != yaml.MappingNode {
			return &lineError{line: n.Line, err: errors.New("a merge key (<<) must refer to a mapping or a sequence of mappings")}
		}
		merged := map[string]any{}
		if err := c.mapping(src, merged, map[string]int{}); err != nil {
			return err
		}
		for k, v := range merged {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	return nil
}

func (c *converter) scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null", "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, &lineError{line: n.Line, err: err}
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return nil, &lineError{line: n.Line, err: fmt.Errorf("%s is not a number JSON can hold", n.Value)}
		}
		return v, nil
	default:
		// Strings, timestamps, binary (base64 text, which is what []byte fields expect)
		// and custom tags are all kept as written.
		return n.Value, nil
	}
}

// lineOf returns the line of the field at path (as written by sigs.k8s.io/json and
// k8s.io/apimachinery field paths: "spec.listeners[0].port") under the root node, or of
// the deepest node of the path that exists. Map keys may themselves contain dots
// (app.kubernetes.io/name); the longest key that matches wins.
func lineOf(root *yaml.Node, path string) int {
	n, line := root, root.Line
	for path != "" {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if strings.HasPrefix(path, "[") {
			end := strings.IndexByte(path, ']')
			if end < 0 || n.Kind != yaml.SequenceNode {
				return line
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n, path = n.Content[i], path[end+1:]
			line = n.Line
			continue
		}
		path = strings.TrimPrefix(path, ".")
		if n.Kind != yaml.MappingNode {
			return line
		}
		var key, value *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !keyPrefixes(path, k.Value) || (key != nil && len(k.Value) <= len(key.Value)) {
				continue
			}
			key, value = k, n.Content[i+1]
		}
		if key == nil {
			return line
		}
		n, path = value, path[len(key.Value):]
		line = key.Line
	}
	return line
}

// keyPrefixes says whether path starts with the map key followed by the end of the path,
// a dot or an index.
func keyPrefixes(path, key string) bool {
	if !strings.HasPrefix(path, key) {
		return false
	}
	rest := path[len(key):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}
