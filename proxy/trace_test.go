package proxy

import (
	"net/http"
	"regexp"
	"testing"
)

var validTraceparent = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

func TestPropagateTrace(t *testing.T) {
	const in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	h := http.Header{"Traceparent": {in}, "Tracestate": {"a=b"}}
	propagateTrace(h)
	got := h.Get("Traceparent")
	if !validTraceparent.MatchString(got) || got[:36] != in[:36] || got[36:52] == in[36:52] || got[52:] != in[52:] {
		t.Errorf("valid traceparent %s became %s: want the same trace and flags with a new parent", in, got)
	}
	if h.Get("Tracestate") != "a=b" {
		t.Error("tracestate of a continued trace was changed")
	}
	for _, old := range []string{"", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "garbage"} {
		h := http.Header{"Tracestate": {"a=b"}}
		if old != "" {
			h.Set("Traceparent", old)
		}
		propagateTrace(h)
		if got := h.Get("Traceparent"); !validTraceparent.MatchString(got) || got == old {
			t.Errorf("traceparent %q: got %q, want a new sampled trace", old, got)
		}
		if h.Get("Tracestate") != "" {
			t.Errorf("traceparent %q: the tracestate of another trace was kept", old)
		}
	}
}
