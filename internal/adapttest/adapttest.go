// Package adapttest runs golden Caddyfile → JSON adapt cases.
package adapttest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

// Case is one golden case: a Caddyfile and either the JSON it must adapt to
// (compared after compaction) or a substring of the error it must produce.
type Case struct {
	Name      string
	Caddyfile string
	JSON      string
	Err       string
}

// Run adapts every case.
func Run(t *testing.T, cases []Case) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			got, _, err := adapter.Adapt([]byte(tc.Caddyfile), nil)
			if tc.Err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Err) {
					t.Fatalf("want error containing %q, got %v (JSON %s)", tc.Err, err, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var want, have bytes.Buffer
			if err := json.Compact(&want, []byte(tc.JSON)); err != nil {
				t.Fatalf("golden JSON invalid: %v", err)
			}
			if err := json.Compact(&have, got); err != nil {
				t.Fatalf("adapted JSON invalid: %v", err)
			}
			if want.String() != have.String() {
				t.Fatalf("adapted JSON differs\n got: %s\nwant: %s", have.String(), want.String())
			}
		})
	}
}
