// Package edgeauth drives erp_auth (erp_jwt, erp_api_key, erp_authz) in the
// running binary: company isolation, forged tokens (made with golang-jwt,
// not the code under test), key rotation, revocation across instances, API
// keys, and canonical paths (SECURITY.md categories 1, 2, 3, 6, 7).
package edgeauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// sharedEnv starts n instances of Caddyfile.example on one Postgres and one Redis.
func sharedEnv(t *testing.T, n int) []*stacktest.Instance {
	t.Helper()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{
		"ERP_POSTGRES_URL":         pg,
		"ERP_REDIS_URL":            redisURL,
		"ERP_KEY_PREFIX":           prefix,
		"ERP_MASTER_KEY":           testMasterKey,
		"ERP_INTROSPECTION_SECRET": "test-introspection-secret",
	}
	var out []*stacktest.Instance
	for range n {
		out = append(out, stacktest.Start(t, stacktest.Options{Env: env}))
	}
	return out
}

// expectCode asserts an envelope error with status and code.
func expectCode(t *testing.T, resp *httpt.Response, status int, code string) *httpt.Envelope {
	t.Helper()
	env := resp.Envelope(t)
	if resp.StatusCode != status || env.Code() != code {
		t.Fatalf("%s %s: got %d %s, want %d %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, resp.Body, status, code)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
	return env
}

// expectOK asserts a 2xx success envelope.
func expectOK(t *testing.T, resp *httpt.Response) *httpt.Envelope {
	t.Helper()
	env := resp.Envelope(t)
	if resp.StatusCode/100 != 2 || !env.Success {
		t.Fatalf("%s %s: got %d %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, resp.Body)
	}
	return env
}

// eventually polls f until it is true or d passed; it reports how long it took.
func eventually(t *testing.T, d time.Duration, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if f() {
			return time.Since(start)
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s", d)
	return d
}

func ids(t *testing.T, env *httpt.Envelope) []string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(env.Data, &items); err != nil {
		var one struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(env.Data, &one); err != nil {
			t.Fatalf("data: %v", err)
		}
		return []string{one.ID}
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

var login = demoauth.Login
var bearer = demoauth.Bearer
