package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest: a
// Caddyfile, a line of ten dashes, then the JSON it adapts to or
// "ERROR: " and a part of the error it must give.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var cases []adapttest.Case
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		caddyfile, want, ok := strings.Cut(string(b), "\n----------\n")
		if !ok {
			t.Fatalf("%s: no ---------- line", f)
		}
		c := adapttest.Case{Name: strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), Caddyfile: caddyfile}
		if msg, isErr := strings.CutPrefix(want, "ERROR: "); isErr {
			c.Err = strings.TrimSpace(msg)
		} else {
			c.JSON = want
		}
		cases = append(cases, c)
	}
	adapttest.Run(t, cases)
}
