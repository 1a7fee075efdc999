// Package adapttest runs golden Caddyfile → JSON adapt cases, for the
// tests of the modules under caddymodules/; it owns no state and imports
// nothing of ours.
package adapttest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// Files reads the golden cases of the files matching pattern (e.g.
// "testdata/*.caddyfiletest"), as Caddy's own caddyfile_adapt tests are
// written: a Caddyfile, a line of ten dashes, then the JSON it adapts to,
// or `error: ` and a part of the error it must give. The JSON may hold
// `<`, `>` and `&` as written; they are escaped as encoding/json writes
// them.
func Files(t *testing.T, pattern string) []Case {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases for %s: %v", pattern, err)
	}
	jsonEscapes := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`)
	cases := make([]Case, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in, out, ok := strings.Cut(string(b), "\n----------\n")
		if !ok {
			t.Fatalf("%s: no ---------- line", f)
		}
		c := Case{Name: strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), Caddyfile: in}
		if trimmed := strings.TrimSpace(out); len(trimmed) >= 7 && strings.EqualFold(trimmed[:7], "error: ") {
			c.Err = strings.TrimSpace(trimmed[7:])
		} else {
			c.JSON = jsonEscapes.Replace(out)
		}
		cases = append(cases, c)
	}
	return cases
}
