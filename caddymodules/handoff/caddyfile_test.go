package handoff

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata: a Caddyfile, a line
// of ten dashes, then the JSON it adapts to (or `error: <substring>`).
func TestCaddyfileAdapt(t *testing.T) {
	cases := adapttest.Files(t, "testdata/*.caddyfiletest")
	adapttest.Run(t, cases)
}
