package kubelet

import "testing"

func TestExpand(t *testing.T) {
	vars := map[string]string{"POD": "echo-1", "EMPTY": ""}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	for in, want := range map[string]string{
		"plain":              "plain",
		"$(POD)":             "echo-1",
		"pod=$(POD)/x":       "pod=echo-1/x",
		"$(UNKNOWN)":         "$(UNKNOWN)",
		"$$(POD)":            "$(POD)",
		"[$(EMPTY)]":         "[]",
		"$(POD":              "$(POD",
		"cost $5":            "cost $5",
		"end$":               "end$",
		"$(POD)$(POD)":       "echo-1echo-1",
		"$$$(POD)":           "$echo-1",
		"a $(POD) b $(NOPE)": "a echo-1 b $(NOPE)",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
