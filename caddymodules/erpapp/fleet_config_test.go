package erpapp

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The linked Caddy functions exist in the Caddy of go.mod and behave as
// the fleet sync relies on: a read gives the path's JSON and an ETag, a
// change with that ETag loads, a change with a stale one is refused 412.
func TestCaddyConfigAccess(t *testing.T) {
	cfg := `{"admin":{"disabled":true},"logging":{"logs":{"default":{"level":"ERROR"}}}}`
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	const path = "/config/logging/logs/default"
	raw, etag, err := readConfigPath(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"ERROR"`) || !strings.HasPrefix(etag, `"`+path+" ") {
		t.Fatalf("read %s, etag %s", raw, etag)
	}
	if err := replaceConfigPath(path, []byte(`{"level":"WARN"}`), etag); err != nil {
		t.Fatalf("change with a current etag: %v", err)
	}
	raw, _, err = readConfigPath(path)
	if err != nil || !strings.Contains(string(raw), `"WARN"`) {
		t.Fatalf("after change: %s %v", raw, err)
	}
	err = replaceConfigPath(path, []byte(`{"level":"INFO"}`), etag) // stale
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusPreconditionFailed {
		t.Fatalf("change with a stale etag: %v", err)
	}
}
