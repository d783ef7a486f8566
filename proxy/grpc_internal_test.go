package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestGRPCTimeout(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"199876u", 199876 * time.Microsecond, true},
		{"1H", time.Hour, true},
		{"5M", 5 * time.Minute, true},
		{"3S", 3 * time.Second, true},
		{"100m", 100 * time.Millisecond, true},
		{"99999999n", 99999999 * time.Nanosecond, true},
		{"", 0, false},
		{"100", 0, false},        // no unit
		{"100x", 0, false},       // unknown unit
		{"123456789m", 0, false}, // more than 8 digits
		{"-5m", 0, false},        // negative
		{"m", 0, false},          // no value
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Grpc-Timeout", tt.header)
		}
		got, ok := grpcTimeout(h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("grpc-timeout %q: %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}
