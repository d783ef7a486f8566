package kubelet

import "testing"

func TestTailStart(t *testing.T) {
	for _, tc := range []struct {
		data string
		n    int
		want string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc\n", 0, ""},
		{"", 3, ""},
	} {
		if got := tc.data[tailStart([]byte(tc.data), tc.n):]; got != tc.want {
			t.Errorf("last %d lines of %q: %q, want %q", tc.n, tc.data, got, tc.want)
		}
	}
}
