// Package http1 is the HTTP/1.1 codec of the proxy's fast path: it parses request and
// response heads into reused structs (header fields as byte slices, no maps), refuses
// ambiguous framing, and copies bodies from one connection to another with framing of its
// own (Content-Length, chunked, or until the connection closes), never forwarding the
// sender's framing bytes as they came.
//
// It does not handle connections, timeouts or routing; the proxy does.
package http1

import (
	"bufio"
	"bytes"
)

// Field is one header field. Name and Value point into the head's own buffer and are valid
// until the head is read into again.
type Field struct {
	Name, Value []byte
}

// Header is a message's header fields in the order they came, with the methods the router's
// header modifiers use (keys are matched case-insensitively).
type Header struct {
	Fields []Field
	buf    []byte
}

func (h *Header) reset() {
	h.Fields = h.Fields[:0]
	h.buf = h.buf[:0]
}

// Get returns the first value of the field named key, "" if none.
func (h *Header) Get(key string) string {
	if v, ok := h.Value(key); ok {
		return string(v)
	}
	return ""
}

// Value returns the first value of the field named key.
func (h *Header) Value(key string) ([]byte, bool) {
	for i := range h.Fields {
		if equalFold(h.Fields[i].Name, key) {
			return h.Fields[i].Value, true
		}
	}
	return nil, false
}

// Joined returns every value of the field named key joined with ",", as a proxy may combine
// them; ok is false when there is none.
func (h *Header) Joined(key string) (string, bool) {
	var out []byte
	n := 0
	for i := range h.Fields {
		if equalFold(h.Fields[i].Name, key) {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, h.Fields[i].Value...)
			n++
		}
	}
	return string(out), n > 0
}

// Has reports whether a field named key is present.
func (h *Header) Has(key string) bool {
	_, ok := h.Value(key)
	return ok
}

// Del removes every field named key.
func (h *Header) Del(key string) {
	out := h.Fields[:0]
	for _, f := range h.Fields {
		if !equalFold(f.Name, key) {
			out = append(out, f)
		}
	}
	clear(h.Fields[len(out):])
	h.Fields = out
}

// Add appends a field.
func (h *Header) Add(key, value string) {
	start := len(h.buf)
	h.buf = append(h.buf, key...)
	h.buf = append(h.buf, value...)
	// The slices may point into an array that a later append outgrows; the old array stays
	// valid (and alive) for as long as they do.
	h.Fields = append(h.Fields, Field{Name: h.buf[start : start+len(key)], Value: h.buf[start+len(key):]})
}

// Set replaces every field named key with one of this value.
func (h *Header) Set(key, value string) {
	h.Del(key)
	h.Add(key, value)
}

// Write writes the fields as "Name: value" lines, skipping those skip reports.
func (h *Header) Write(w *bufio.Writer, skip func(name []byte) bool) {
	for _, f := range h.Fields {
		if skip != nil && skip(f.Name) {
			continue
		}
		_, _ = w.Write(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.Value)
		_, _ = w.WriteString("\r\n")
	}
}

// HasToken reports whether a comma-separated field named key lists token
// (case-insensitively), as Connection lists "close".
func (h *Header) HasToken(key, token string) bool {
	for i := range h.Fields {
		if equalFold(h.Fields[i].Name, key) && hasToken(h.Fields[i].Value, token) {
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated list holds token (ASCII case-insensitively).
func hasToken[T string | []byte](list []byte, token T) bool {
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if equalFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}

// StripHopByHop removes the fields that apply to one connection only (see HopByHop), and
// those the Connection fields name.
func (h *Header) StripHopByHop() {
	// The Connection values are gathered first: the loop below overwrites the fields.
	var lists [4][]byte
	n := 0
	for _, f := range h.Fields {
		if equalFold(f.Name, "Connection") && n < len(lists) {
			lists[n] = f.Value
			n++
		}
	}
	out := h.Fields[:0]
	for _, f := range h.Fields {
		if HopByHop(f.Name) || listed(lists[:n], f.Name) {
			continue
		}
		out = append(out, f)
	}
	clear(h.Fields[len(out):])
	h.Fields = out
}

// listed reports whether name is a token of one of the lists.
func listed(lists [][]byte, name []byte) bool {
	for _, list := range lists {
		if hasToken(list, name) {
			return true
		}
	}
	return false
}

// HopByHop reports whether a field applies to one connection only and is never forwarded
// (RFC 9110 7.6.1, and the fields proxies have always dropped).
func HopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "Te")
	case 7:
		return equalFold(name, "Upgrade") || equalFold(name, "Trailer")
	case 10:
		return equalFold(name, "Connection") || equalFold(name, "Keep-Alive")
	case 16:
		return equalFold(name, "Proxy-Connection")
	case 17:
		return equalFold(name, "Transfer-Encoding")
	case 18:
		return equalFold(name, "Proxy-Authenticate")
	case 19:
		return equalFold(name, "Proxy-Authorization")
	}
	return false
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold[T string | []byte](b []byte, s T) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || (x|0x20) < 'a' || (x|0x20) > 'z' {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isToken reports whether b is an RFC 9110 token (field names, methods).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue reports whether b may be a field value: no control characters but HTAB.
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// methods interns the common methods, so that a request's Method costs no allocation.
var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"}

func methodString(b []byte) string {
	for _, m := range methods {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}
