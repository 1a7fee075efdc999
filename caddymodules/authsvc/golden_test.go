package authsvc

import (
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt: erp_authsvc's golden cases (testdata: a Caddyfile, a
// `----------` line, the JSON it adapts to or `error: …`). The bare
// directive is all there is; a setting on it, the form before the settings
// moved into `erp { authsvc { … } }`, is an adapt error that says so.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
