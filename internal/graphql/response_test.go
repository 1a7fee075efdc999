package graphql

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/erpgate/erpgate/contract"
)

func TestAppendResponse(t *testing.T) {
	t.Parallel()
	errs := []*Error{
		{Message: "customer \"x\" not found", Locations: []Location{{2, 5}}, Path: []any{"invoices", "nodes", 3, "customer"}, Code: contract.CodeNotFound},
		{Message: "too complex", Code: contract.CodeQueryTooComplex, Field: "query", Context: map[string]any{"cost": 120, "limit": 100}},
	}
	cases := []struct {
		name string
		data []byte
		errs []*Error
		meta []byte
		want string
	}{
		{"data only", []byte(`{"a":1}`), nil, nil, `{"data":{"a":1}}`},
		{"everything", []byte(`{"a":null}`), errs, []byte(`{"request_id":"r1"}`),
			`{"data":{"a":null},"errors":[{"message":"customer \"x\" not found","locations":[{"line":2,"column":5}],"path":["invoices","nodes",3,"customer"],"extensions":{"code":"NOT_FOUND"}},` +
				`{"message":"too complex","extensions":{"code":"QUERY_TOO_COMPLEX","field":"query","context":{"cost":120,"limit":100}}}],"extensions":{"meta":{"request_id":"r1"}}}`},
		{"request error: no data", nil, errs[1:], []byte(`{}`),
			`{"errors":[{"message":"too complex","extensions":{"code":"QUERY_TOO_COMPLEX","field":"query","context":{"cost":120,"limit":100}}}],"extensions":{"meta":{}}}`},
		{"null data", []byte("null"), nil, nil, `{"data":null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendResponse([]byte("x"), c.data, c.errs, c.meta))
			if got != "x"+c.want {
				t.Fatalf("got  %s\nwant x%s", got, c.want)
			}
		})
	}
}

// FuzzJSONString checks jsonString against encoding/json: valid JSON that
// decodes to the input (invalid UTF-8 replaced, as encoding/json does).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b,c", "\x00\x1f\\", "\u2028é😀", "\xff\xfe", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := jsonString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q → %s: %v", s, out, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // invalid bytes → U+FFFD
		}
		if back != want {
			t.Fatalf("%q → %s → %q", s, out, back)
		}
	})
}
