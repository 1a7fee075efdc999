package assertion

import "testing"

func TestHasScope(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		scopes, prefix, suffix string
		want                   bool
	}{
		{"a:read invoices:read", "invoices", ":read", true},
		{"invoices:write", "invoices", ":read", false},
		{"invoices:readx invoice:read", "invoices", ":read", false},
		{"xinvoices:read", "invoices", ":read", false},
		{"", "invoices", ":read", false},
	} {
		if HasScopeParts(c.scopes, c.prefix, c.suffix) != c.want {
			t.Fatalf("HasScopeParts(%q, %q, %q) != %v", c.scopes, c.prefix, c.suffix, c.want)
		}
	}
	if !HasScope("a:read b:write", "b:write") || HasScope("a:read b:write", "b") || HasScope("", "a:read") {
		t.Fatal("HasScope")
	}
}
