package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
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
// a new sampled trace. tracestate passes through untouched. Ids come from math/rand/v2's
// per-thread ChaCha8 generator: unpredictable enough for ids, and no system call per request
// as crypto/rand makes.
func propagateTrace(h traceFields) {
	var tp [55]byte
	old := h.Get("Traceparent")
	if len(old) == 55 && old[2] == '-' && old[35] == '-' && old[52] == '-' && old[:2] != "ff" && isHex(old[:2]) &&
		isHex(old[3:35]) && isHex(old[36:52]) && isHex(old[53:]) && old[3:35] != "00000000000000000000000000000000" {
		copy(tp[:], old)
	} else {
		copy(tp[:], "00-")
		putID(tp[3:19])
		putID(tp[19:35])
		copy(tp[52:], "-01")
		h.Del("Tracestate")
	}
	tp[35] = '-'
	putID(tp[36:52])
	h.Set("Traceparent", string(tp[:]))
}

// putID writes 8 random bytes, not all zero (an invalid id), in hex into dst.
func putID(dst []byte) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], max(rand.Uint64(), 1))
	hex.Encode(dst, b[:])
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
