package demo

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest: a
// Caddyfile, a line of ten dashes, then the JSON it adapts to or
// "ERROR: " and a part of the error it must give.
func TestCaddyfileAdapt(t *testing.T) {
	cases := adapttest.Files(t, "testdata/*.caddyfiletest")
	adapttest.Run(t, cases)
}
