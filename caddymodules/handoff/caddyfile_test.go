package handoff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata: a Caddyfile, a line
// of ten dashes, then the JSON it adapts to (or `error: <substring>`).
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
		in, out, ok := strings.Cut(string(b), "\n----------\n")
		if !ok {
			t.Fatalf("%s: no ---------- line", f)
		}
		c := adapttest.Case{Name: strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), Caddyfile: in}
		if e, isErr := strings.CutPrefix(strings.TrimSpace(out), "error: "); isErr {
			c.Err = e
		} else {
			c.JSON = strings.ReplaceAll(out, ">", `\u003e`) // as encoding/json writes it
		}
		cases = append(cases, c)
	}
	adapttest.Run(t, cases)
}
