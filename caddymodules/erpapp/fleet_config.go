package erpapp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	_ "unsafe" // go:linkname

	_ "github.com/caddyserver/caddy/v2" // the linked functions' package
	"github.com/cespare/xxhash/v2"
)

// Caddy's own config access, as its admin API's /config/ endpoint uses it:
// read a path of the running config, and change a path (with an If-Match
// precondition) through a graceful config load. Caddy exports Load (the
// whole config) but not these; the fleet sync changes only /config/apps/erp
// and must not overwrite a change an admin made a moment before, which
// If-Match guarantees. TestCaddyConfigAccess checks them against the Caddy
// version in go.mod.

//go:linkname caddyReadConfig github.com/caddyserver/caddy/v2.readConfig
func caddyReadConfig(path string, out io.Writer) error

//go:linkname caddyChangeConfig github.com/caddyserver/caddy/v2.changeConfig
func caddyChangeConfig(method, path string, input []byte, ifMatchHeader string, forceReload bool) error

// readConfigPath reads a path of the running config and its If-Match
// value (the ETag the admin API would send).
func readConfigPath(path string) ([]byte, string, error) {
	var buf bytes.Buffer
	if err := caddyReadConfig(path, &buf); err != nil {
		return nil, "", err
	}
	h := xxhash.New()
	_, _ = h.Write(buf.Bytes())
	return buf.Bytes(), fmt.Sprintf(`"%s %x"`, path, h.Sum(nil)), nil
}

// replaceConfigPath sets path to body when the config there is still what
// etag names (else a caddy.APIError with status 412), and loads the result.
func replaceConfigPath(path string, body []byte, etag string) error {
	return caddyChangeConfig(http.MethodPost, path, body, etag, false)
}
