package batch

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest: a
// Caddyfile, a line of ten dashes, then the JSON it adapts to or "error: "
// and a part of the error it must give.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}

// TestSetup: the built-in plans' limits, a configured plan's override, an
// unknown default plan refused, the quota override's plan first.
func TestSetup(t *testing.T) {
	h := &Handler{Plans: map[string]*Plan{"free": {MaxItems: 5}, "gold": {MaxItems: 300}}}
	if err := h.setup(); err != nil {
		t.Fatal(err)
	}
	for plan, want := range map[string]int{"free": 5, "standard": 50, "premium": 100, "enterprise": 200, "gold": 300, "nope": 5, "": 5} {
		if _, got := h.planFor("acme", plan); got != want {
			t.Errorf("plan %q: %d items, want %d", plan, got, want)
		}
	}
	if h.MaxParallel != 4 || h.MaxBody != 1<<20 || h.MaxResponse != 1<<20 {
		t.Errorf("defaults: %+v", h)
	}
	if err := (&Handler{DefaultPlan: "gold"}).setup(); err == nil {
		t.Error("an unknown default plan was accepted")
	}
	if err := (&Handler{MaxParallel: 65}).setup(); err == nil {
		t.Error("max_parallel 65 was accepted")
	}
}
