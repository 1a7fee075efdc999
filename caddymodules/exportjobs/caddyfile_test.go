package exportjobs

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
