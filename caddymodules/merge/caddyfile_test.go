package merge

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("erp_merge {\n ttl 30m\n max_entries 50\n max_body 4096\n}")); err != nil {
		t.Fatal(err)
	}
	if h.TTL != caddy.Duration(30*time.Minute) || h.MaxEntries != 50 || h.MaxBody != 4096 {
		t.Fatalf("%+v", h)
	}
	for _, bad := range []string{"erp_merge x", "erp_merge {\n ttl 0\n}", "erp_merge {\n max_body -1\n}", "erp_merge {\n color red\n}"} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
