package merge

import (
	"encoding/json"
	"reflect"
	"testing"
)

func obj(t testing.TB, s string) map[string]any {
	t.Helper()
	v, err := Decode([]byte(s))
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object", s)
	}
	return m
}

func TestThreeWay(t *testing.T) {
	cases := []struct {
		name                 string
		base, current, patch string
		want                 string   // the patch to send
		conflicts            []string // fields
	}{
		{"disjoint fields", `{"a":1,"b":1}`, `{"a":1,"b":2}`, `{"a":5}`, `{"a":5}`, nil},
		{"same field changed since", `{"a":1,"b":1}`, `{"a":2,"b":1}`, `{"a":5}`, `{}`, []string{"a"}},
		{"same change made by both", `{"a":1}`, `{"a":5}`, `{"a":5}`, `{}`, nil},
		{"unchanged member sent back does not revert", `{"a":1,"b":1}`, `{"a":1,"b":2}`, `{"a":1,"c":3}`, `{"c":3}`, nil},
		{"numbers by value", `{"a":1}`, `{"a":1.0}`, `{"a":2}`, `{"a":2}`, nil},
		{"null deletes, untouched since", `{"a":1,"b":1}`, `{"a":1,"b":2}`, `{"a":null}`, `{"a":null}`, nil},
		{"null deletes a member changed since", `{"a":1}`, `{"a":2}`, `{"a":null}`, `{}`, []string{"a"}},
		{"null on a member deleted since", `{"a":1}`, `{}`, `{"a":null}`, `{}`, nil},
		{"set a member deleted since", `{"a":1}`, `{}`, `{"a":2}`, `{}`, []string{"a"}},
		{"add a member both added differently", `{}`, `{"a":1}`, `{"a":2}`, `{}`, []string{"a"}},
		{"nested disjoint", `{"x":{"p":1,"q":1}}`, `{"x":{"p":1,"q":2}}`, `{"x":{"p":3}}`, `{"x":{"p":3}}`, nil},
		{"nested conflict", `{"x":{"p":1,"q":1}}`, `{"x":{"p":2,"q":1}}`, `{"x":{"p":3,"q":1}}`, `{}`, []string{"x.p"}},
		{"nested object replaced by a scalar since", `{"x":{"p":1}}`, `{"x":7}`, `{"x":{"p":2}}`, `{}`, []string{"x"}},
		{"nested null", `{"x":{"p":1,"q":1}}`, `{"x":{"p":1,"q":5}}`, `{"x":{"p":null}}`, `{"x":{"p":null}}`, nil},
		{"arrays are values", `{"l":[1,2]}`, `{"l":[1,2,3]}`, `{"l":[1]}`, `{}`, []string{"l"}},
		{"arrays untouched since", `{"l":[1,2],"b":1}`, `{"l":[1,2],"b":2}`, `{"l":[1]}`, `{"l":[1]}`, nil},
		{"two conflicts ordered", `{"b":1,"a":1,"c":1}`, `{"b":2,"a":2,"c":1}`, `{"b":3,"a":3,"c":3}`, `{"c":3}`, []string{"a", "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, conflicts := ThreeWay(obj(t, c.base), obj(t, c.current), obj(t, c.patch))
			if !Equal(got, obj(t, c.want)) {
				b, _ := json.Marshal(got)
				t.Errorf("patch = %s, want %s", b, c.want)
			}
			var fields []string
			for _, cf := range conflicts {
				fields = append(fields, cf.Field)
			}
			if !reflect.DeepEqual(fields, c.conflicts) {
				t.Errorf("conflicts = %v, want %v", fields, c.conflicts)
			}
		})
	}
}

func TestConflictValues(t *testing.T) {
	_, cs := ThreeWay(obj(t, `{"x":{"p":1}}`), obj(t, `{"x":{"p":2}}`), obj(t, `{"x":{"p":3}}`))
	if len(cs) != 1 || cs[0].Field != "x.p" || !Equal(cs[0].Base, json.Number("1")) || !Equal(cs[0].Current, json.Number("2")) || !Equal(cs[0].Proposed, json.Number("3")) {
		t.Fatalf("%+v", cs)
	}
	_, cs = ThreeWay(obj(t, `{"a":1}`), obj(t, `{"a":2}`), obj(t, `{"a":null}`))
	if len(cs) != 1 || cs[0].Proposed != nil {
		t.Fatalf("a deletion's proposed value: %+v", cs)
	}
}

func TestApplyRFC7396(t *testing.T) {
	// RFC 7396 appendix A examples
	cases := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		got, ok := Apply(obj(t, c.target), true, obj(t, c.patch))
		if !ok || !Equal(got, obj(t, c.want)) {
			t.Errorf("Apply(%s, %s) = %v, want %s", c.target, c.patch, got, c.want)
		}
	}
	target := obj(t, `{"a":{"b":1}}`)
	Apply(target, true, obj(t, `{"a":{"b":2}}`))
	if !Equal(target, obj(t, `{"a":{"b":1}}`)) {
		t.Fatal("Apply modified its target")
	}
}

func BenchmarkThreeWay(b *testing.B) {
	base := obj(b, `{"id":"cus_1","name":"Acme","email":"a@example.com","address":{"street":"Main 1","city":"Berlin","zip":"10115"},"tags":["a","b"],"limit":1000}`)
	current := obj(b, `{"id":"cus_1","name":"Acme GmbH","email":"a@example.com","address":{"street":"Main 1","city":"Berlin","zip":"10117"},"tags":["a","b"],"limit":1000}`)
	patch := obj(b, `{"email":"billing@example.com","address":{"street":"Side 2"},"limit":2000}`)
	b.ReportAllocs()
	for b.Loop() {
		out, cs := ThreeWay(base, current, patch)
		if len(cs) != 0 || len(out) != 3 {
			b.Fatal(out, cs)
		}
	}
}
