package bodylimit_test

import (
	"testing"

	_ "github.com/erpgate/erpgate/caddymodules/bodylimit"
	_ "github.com/erpgate/erpgate/caddymodules/erpapp" // the erp global option
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
