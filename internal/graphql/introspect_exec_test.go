package graphql

import (
	"strings"
	"testing"
)

// __schema and __type go to Introspect (introspection.go),
// next to root fields that call backends, with no call of their own.
func TestIntrospectionThroughExecute(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(1)
	r := run(t, s, f, nil, `{ t: __type(name: "Invoice") { name fields { name } } __schema { queryType { name } } invoice(id: "inv-1") { __typename id } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	for _, want := range []string{`{"t":{"name":"Invoice","fields":[{"name":"id"},`, `"__schema":{"queryType":{"name":"Query"}}`, `"invoice":{"__typename":"Invoice","id":"inv-1"}}`} {
		if !strings.Contains(string(r.Data), want) {
			t.Fatalf("data %s lacks %s", r.Data, want)
		}
	}
	if f.fetches != 1 || r.Calls != 1 {
		t.Fatalf("fetches %d calls %d", f.fetches, r.Calls)
	}
}
