package quota_test

import (
	"testing"

	_ "github.com/erpgate/erpgate/caddymodules/erpapp" // the erp global option
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
	_ "github.com/erpgate/erpgate/caddymodules/quota"
	_ "github.com/erpgate/erpgate/caddymodules/usage" // erp_usage
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest: a
// Caddyfile, a line of ten dashes, then the JSON it adapts to or "error: "
// and a part of the error it must give.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
