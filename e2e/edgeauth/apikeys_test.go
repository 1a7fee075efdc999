package edgeauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
)

type apiKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func createKey(t *testing.T, base, access string, body map[string]any) apiKey {
	t.Helper()
	r := httpt.Do(t, "POST", base+"/api/v1/auth/api-keys", httpt.JSON(t, body), bearer(access))
	var k apiKey
	if err := json.Unmarshal(expectOK(t, r).Data, &k); err != nil || k.Key == "" || k.ID == "" {
		t.Fatalf("create key: %s", r.Body)
	}
	return k
}

// TestAPIKeys: a key works in both header forms, keeps working through its
// rotation's grace period beside the new secret, stops within 2 seconds of
// revocation at every instance, and expires (SECURITY.md category 6).
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	inst := sharedEnv(t, 2)
	a, b := inst[0], inst[1]
	alice := login(t, a.URL, "alice@acme.test", "acme")
	u := "/api/v2/invoices?limit=2"
	key := createKey(t, a.URL, alice.Access, map[string]any{"name": "ci", "scope": []string{"invoices:read"}})

	env := expectOK(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": key.Key}))
	if env.Meta.CompanyID != "acme" || !strings.HasPrefix(ids(t, env)[0], "inv_acme_") {
		t.Fatalf("key reads %s: %s", env.Meta.CompanyID, env.Data)
	}
	expectOK(t, httpt.Get(t, a.URL+u, map[string]string{"Authorization": "ApiKey " + key.Key}))
	// scope and company bind a key like a token
	expectCode(t, httpt.Do(t, "POST", b.URL+"/api/v2/invoices", []byte(`{}`), map[string]string{"X-API-Key": key.Key}), 403, "FORBIDDEN")
	expectCode(t, httpt.Get(t, b.URL+u+"&company_id=globex", map[string]string{"X-API-Key": key.Key}), 403, "COMPANY_MISMATCH")
	expectCode(t, httpt.Get(t, b.URL+"/api/v2/customers", map[string]string{"X-API-Key": key.Key}), 403, "FORBIDDEN")
	// a guessed key, a key with a changed character
	expectCode(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": "erp_live_nope_nope"}), 401, "UNAUTHENTICATED")
	flipped := key.Key[:len(key.Key)-1] + string("ab"[map[bool]int{true: 1}[key.Key[len(key.Key)-1] == 'a']])
	expectCode(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": flipped}), 401, "UNAUTHENTICATED")

	// rotation: old and new both work during the grace period, then only the new one
	r := httpt.Do(t, "POST", a.URL+"/api/v1/auth/api-keys/"+key.ID+"/rotate", []byte(`{"grace_period":"4s"}`), bearer(alice.Access))
	var rotated apiKey
	if err := json.Unmarshal(expectOK(t, r).Data, &rotated); err != nil || rotated.Key == "" || rotated.Key == key.Key {
		t.Fatalf("rotate: %s", r.Body)
	}
	rotatedAt := time.Now()
	expectOK(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": key.Key}))
	expectOK(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": rotated.Key}))
	expectOK(t, httpt.Get(t, a.URL+u, map[string]string{"X-API-Key": key.Key}))
	eventually(t, 8*time.Second, func() bool {
		return httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": key.Key}).StatusCode == 401
	})
	if time.Since(rotatedAt) < 3*time.Second {
		t.Fatalf("old secret refused before its grace period ended (%s)", time.Since(rotatedAt))
	}
	expectOK(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": rotated.Key}))

	// revocation reaches every instance within 2 seconds
	expectOK(t, httpt.Do(t, http.MethodDelete, a.URL+"/api/v1/auth/api-keys/"+key.ID, nil, bearer(alice.Access)))
	took := eventually(t, 2*time.Second, func() bool {
		return httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": rotated.Key}).StatusCode == 401
	})
	t.Logf("revoked key refused at the other instance after %s", took.Round(time.Millisecond))
	expectCode(t, httpt.Get(t, a.URL+u, map[string]string{"X-API-Key": rotated.Key}), 401, "UNAUTHENTICATED")

	// expiry
	short := createKey(t, a.URL, alice.Access, map[string]any{"scope": []string{"invoices:read"}, "expires_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)})
	expectOK(t, httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": short.Key}))
	eventually(t, 5*time.Second, func() bool {
		return httpt.Get(t, b.URL+u, map[string]string{"X-API-Key": short.Key}).StatusCode == 401
	})

	// introspection answers only the edge's credential, and the same to
	// everyone else whether the key exists or not
	body := httpt.JSON(t, map[string]string{"token": short.Key})
	r1 := httpt.Do(t, "POST", a.URL+"/api/v1/auth/introspect", body, nil)
	r2 := httpt.Do(t, "POST", a.URL+"/api/v1/auth/introspect", httpt.JSON(t, map[string]string{"token": "erp_live_nope_nope"}), map[string]string{"Authorization": "Bearer wrong"})
	expectCode(t, r1, 401, "UNAUTHENTICATED")
	expectCode(t, r2, 401, "UNAUTHENTICATED")
	r3 := httpt.Do(t, "POST", a.URL+"/api/v1/auth/introspect", httpt.JSON(t, map[string]string{"token": rotated.Key}), map[string]string{"Authorization": "Bearer test-introspection-secret"})
	if e := expectOK(t, r3); !strings.Contains(string(e.Data), `"active":false`) {
		t.Fatalf("introspection of a revoked key: %s", e.Data)
	}

	for _, in := range inst {
		for _, secret := range []string{key.Key, rotated.Key, short.Key} {
			if strings.Contains(in.Logs(), secret) {
				t.Fatal("an API key reached the logs")
			}
		}
	}
}
