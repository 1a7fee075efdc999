package graphql

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
