package graphql

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzSplit checks splitArray and splitObject against encoding/json on
// valid JSON.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`[]`, `{}`, ` [1, "a,]\"", {"b":[1,{}]}, null, true, -1.5e3 ] `, `{"a":1,"a":2," \u0041\"":{"x":"}"}, "n" : null}`, `"x"`, `[[],[{}]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var wantItems []json.RawMessage
		errA := json.Unmarshal(b, &wantItems)
		items, ok := splitArray(b)
		if ok != (errA == nil) {
			t.Fatalf("%s: splitArray ok %v, encoding/json %v", b, ok, errA)
		}
		if ok && len(items)+len(wantItems) > 0 && !reflect.DeepEqual(items, wantItems) {
			t.Fatalf("%s: items %q, want %q", b, items, wantItems)
		}
		var wantMembers map[string]json.RawMessage
		errO := json.Unmarshal(b, &wantMembers)
		_, obj, ok := splitObject(nil, b)
		var members map[string]json.RawMessage
		if ok {
			members = map[string]json.RawMessage{}
			for _, m := range obj {
				members[string(m.name)] = m.raw
				if got := obj.get(string(m.name)); got == nil {
					t.Fatalf("%s: get(%q) is nil", b, m.name)
				}
			}
		}
		if errO == nil && wantMembers == nil {
			errO = json.Unmarshal([]byte("x"), &wantMembers) // null: not an object for us
		}
		if ok != (errO == nil) {
			t.Fatalf("%s: splitObject ok %v, encoding/json %v", b, ok, errO)
		}
		if ok && !reflect.DeepEqual(members, wantMembers) {
			t.Fatalf("%s: members %q, want %q", b, members, wantMembers)
		}
	})
}
