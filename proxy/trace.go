package proxy

import (
	"crypto/rand"
	"encoding/hex"
)

// traceFields are the header fields propagateTrace reads and writes: an http.Header, or
// the field list of the proxy's own HTTP/1.1 codec.
type traceFields interface {
	Get(key string) string
	Set(key, value string)
	Del(key string)
}

// propagateTrace makes the proxy a hop of the request's W3C trace: a valid traceparent keeps
// its trace id and gets a new parent id (the proxy's span); a missing or malformed one starts
// a new sampled trace. tracestate passes through untouched.
func propagateTrace(h traceFields) {
	var span [8]byte
	_, _ = rand.Read(span[:])
	tp := h.Get("Traceparent")
	if len(tp) == 55 && tp[2] == '-' && tp[35] == '-' && tp[52] == '-' && tp[:2] != "ff" && isHex(tp[:2]) &&
		isHex(tp[3:35]) && isHex(tp[36:52]) && isHex(tp[53:]) && tp[3:35] != "00000000000000000000000000000000" {
		h.Set("Traceparent", tp[:36]+hex.EncodeToString(span[:])+tp[52:])
		return
	}
	var trace [16]byte
	_, _ = rand.Read(trace[:])
	h.Del("Tracestate")
	h.Set("Traceparent", "00-"+hex.EncodeToString(trace[:])+"-"+hex.EncodeToString(span[:])+"-01")
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
