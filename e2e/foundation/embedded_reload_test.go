package foundation

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestEmbeddedReloadKeepsSessions: on the embedded defaults (no Postgres, no
// Redis, no master key) the auth service's in-memory store, its signing keys
// and the key that seals them belong to the erp app's lasting state, not to
// one config: after a reload through the admin API, an access token issued
// before it is still accepted at the edge (and a backend still accepts the
// edge's assertion), its refresh token still refreshes, and the new pair
// works too. A config that kept its own store forgot every session.
func TestEmbeddedReloadKeepsSessions(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_POSTGRES_URL": "", "ERP_REDIS_URL": "", "ERP_MASTER_KEY": "",
	}})
	tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	if r := httpt.Get(t, in.URL+"/api/v1/invoices?limit=1", demoauth.Bearer(tok.Access)); r.StatusCode != 200 {
		t.Fatalf("before the reload: %d %s", r.StatusCode, r.Body)
	}

	caddyfile, err := os.ReadFile(stacktest.RepoRoot() + "/Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second reload drops the config that issued the tokens from every list
		req, _ := http.NewRequest(http.MethodPost, in.AdminURL+"/load", strings.NewReader(string(caddyfile)))
		req.Header.Set("Content-Type", "text/caddyfile")
		req.Header.Set("Cache-Control", "must-revalidate") // reload even though unchanged
		req.Close = true
		resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload: %d %s", resp.StatusCode, b)
		}
	}
	httpt.Client.CloseIdleConnections()

	if r := httpt.Get(t, in.URL+"/api/v1/invoices?limit=1", demoauth.Bearer(tok.Access)); r.StatusCode != 200 {
		t.Fatalf("access token issued before the reload: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Get(t, in.URL+"/api/v1/auth/me", demoauth.Bearer(tok.Access)); r.StatusCode != 200 {
		t.Fatalf("auth service with an access token issued before the reload: %d %s", r.StatusCode, r.Body)
	}
	r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": tok.Refresh}), nil)
	var next demoauth.Tokens
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &next) != nil || next.Access == "" || next.Refresh == "" {
		t.Fatalf("refresh token issued before the reload: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Get(t, in.URL+"/api/v1/invoices?limit=1", demoauth.Bearer(next.Access)); r.StatusCode != 200 {
		t.Fatalf("access token refreshed after the reload: %d %s", r.StatusCode, r.Body)
	}
	// the refresh rotated the pair: the old refresh token is spent
	if r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": tok.Refresh}), nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("spent refresh token: %d %s", r.StatusCode, r.Body)
	}
}
