package rest

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/backends/dialects/rest"
)

func TestCaddyfileKeyset(t *testing.T) {
	var d Dialect
	if err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser("rest {\n filter_fields id\n keyset id starting_after\n}")); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil || d.Keyset != "id" || d.KeysetParam != "starting_after" {
		t.Fatalf("%+v %v", d, err)
	}
	if rd := d.ForBackend("invoices").(*rest.Dialect); rd.Keyset != "id" || rd.KeysetParam != "starting_after" {
		t.Fatalf("%+v", rd)
	}
	for _, bad := range []string{"rest {\n keyset\n}", "rest {\n keyset a b c\n}", "rest {\n keyset id\n keyset id\n}"} {
		var d Dialect
		if err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []Dialect{{Keyset: "a-b"}, {KeysetParam: "after"}, {Keyset: "id", KeysetParam: "a b"}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
