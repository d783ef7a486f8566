package file

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestToJSONValue(t *testing.T) {
	docs, err := parseDocuments([]byte(`base: &base {a: 1, b: two}
other: &other {c: true}
merged:
  <<: [*base, *other]
  b: mine
single:
  <<: *base
alias: *base
scalars: [2020-01-01T00:00:00Z, yes, on, 1.5, 0x10, null, ~, "quoted", !!binary aGk=]
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := toJSONValue(docs[0])
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{"a": 1, "b": "two"}
	want := map[string]any{
		"base":    base,
		"other":   map[string]any{"c": true},
		"merged":  map[string]any{"a": 1, "b": "mine", "c": true},
		"single":  base,
		"alias":   base,
		"scalars": []any{"2020-01-01T00:00:00Z", "yes", "on", 1.5, 16, nil, nil, "quoted", "aGk="},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("value (-want +got):\n%s", diff)
	}
}

func TestToJSONValueErrors(t *testing.T) {
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'h'; i++ {
		prev := string(i - 1)
		laughs += string(i) + ": &" + string(i) + " [*" + strings.Repeat(prev+", *", 9) + prev + "]\n"
	}
	tests := []struct{ name, doc, want string }{
		{"infinity", "a:\n  b: .inf\n", "line 2: .inf is not a number JSON can hold"},
		{"non-scalar key", "a:\n  [x]: 1\n", "line 2: mapping keys must be scalars"},
		{"duplicate key in a merge", "a: &a {x: 1, x: 2}\nb: {<<: *a}\n", `line 1: mapping key "x" already defined at line 1`},
		{"merge of a scalar", "a: &a 1\nb: {<<: *a}\n", "line 1: a merge key (<<) must refer to a mapping or a sequence of mappings"},
		{"alias expansion", laughs, "document has more than 1048576 nodes once aliases are expanded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := parseDocuments([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = toJSONValue(docs[0])
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLineOf(t *testing.T) {
	docs, err := parseDocuments([]byte(`metadata:
  labels:
    app.kubernetes.io/name: x
    app: y
spec:
  items:
  - a: 1
  - a: 2
    b: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"metadata.labels.app.kubernetes.io/name": 3,
		"metadata.labels.app":                    4,
		"spec.items[1].b":                        9,
		"spec.items[1].missing":                  8,
		"spec.items[7].a":                        6,
		"spec.items.a":                           6,
		"nothing":                                1,
	} {
		if got := lineOf(docs[0], path); got != want {
			t.Errorf("lineOf(%q) = %d, want %d", path, got, want)
		}
	}
}
