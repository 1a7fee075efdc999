package version

import (
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
	_ "github.com/erpgate/erpgate/caddymodules/upstreams"
)

// TestCaddyfileAdapt runs the golden cases in testdata/*.caddyfiletest: a
// Caddyfile, a line of ten dashes, then the JSON it adapts to or "error: "
// and a part of the error it must give.
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/*.caddyfiletest"))
}
