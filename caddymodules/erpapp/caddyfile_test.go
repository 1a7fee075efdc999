package erpapp

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt: the erp block's golden cases (testdata/erp_*: a
// Caddyfile, a `----------` line, the JSON it adapts to or `error: …`).
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/erp_*.caddyfiletest"))
}
