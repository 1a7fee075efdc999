package authsvc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external, cfg: authsvc.Config{KeyPublishDelay: 10 * time.Minute, KeyReload: time.Hour}})
		ctx := context.Background()
		before := e.session(t, "alice@acme.test", "acme")
		_, oldKid := e.verify(t, before.str("access_token"))

		newKid, err := e.svc.RotateSigningKey(ctx, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := jwksKeys(e.jwks(t)["raw"])
		if len(keys) != 2 || keys[newKid] == nil {
			t.Fatalf("new key not published at rotation: %v", keys)
		}
		// published, not yet signing
		early := e.session(t, "alice@acme.test", "acme")
		if _, kid := e.verify(t, early.str("access_token")); kid != oldKid {
			t.Fatalf("key signs before its publish delay: %s", kid)
		}
		e.clock.Add(10 * time.Minute)
		after := e.session(t, "alice@acme.test", "acme")
		if _, kid := e.verify(t, after.str("access_token")); kid != newKid {
			t.Fatalf("new tokens signed by %s, want the new key %s", kid, newKid)
		}
		// earlier tokens still verify, independently and at the service
		e.clock.Add(4 * time.Minute)
		e.verify(t, before.str("access_token"))
		if a := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: early.str("access_token")}); a.Status != 200 {
			t.Fatalf("token of the previous key refused: %d %s", a.Status, a.Raw)
		}
		// kept until every token it signed has expired, then retired
		if err := e.svc.SyncKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if keys, _ := jwksKeys(e.jwks(t)["raw"]); keys[oldKid] == nil {
			t.Fatal("old key retired while its tokens were valid")
		}
		e.clock.Add(authsvc.DefaultAccessTTL + time.Hour + 2*time.Minute)
		if err := e.svc.SyncKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if keys, _ := jwksKeys(e.jwks(t)["raw"]); keys[oldKid] != nil || keys[newKid] == nil {
			t.Fatalf("after expiry: old present=%v new present=%v", keys[oldKid] != nil, keys[newKid] != nil)
		}
		// scheduled rotation: when the signer is due, the next key is published ahead
		e.clock.Add(authsvc.DefaultKeyRotation)
		if err := e.svc.SyncKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if keys, _ := jwksKeys(e.jwks(t)["raw"]); len(keys) != 2 {
			t.Fatalf("scheduled rotation did not publish the next key: %d keys", len(keys))
		}
	})
}

func TestSealedKeysNeedTheMasterKey(t *testing.T) {
	t.Parallel()
	mk := make([]byte, 32)
	s1, _ := authsvc.NewSealer(mk)
	k, err := authsvc.NewSigningKey(s1, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(k.SealedPrivate), string(k.PublicKey)) {
		t.Fatal("sealed key contains the public key in the clear")
	}
	if _, err := s1.Open(k.KID, k.SealedPrivate); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Open("other-kid", k.SealedPrivate); err == nil {
		t.Fatal("sealed key opened under another kid")
	}
	other := make([]byte, 32)
	other[0] = 1
	s2, _ := authsvc.NewSealer(other)
	if _, err := s2.Open(k.KID, k.SealedPrivate); err == nil {
		t.Fatal("sealed key opened under another master key")
	}
	if _, err := authsvc.ParseMasterKey("c2hvcnQ="); err == nil || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Fatalf("short master key: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		alice := e.session(t, "alice@acme.test", "acme")
		at := alice.str("access_token")
		c := e.do(t, req{method: "POST", path: "/api/v1/auth/api-keys", bearer: at,
			body: map[string]any{"name": "ci", "scope": "invoices:read customers:read", "expires_at": e.clock.Now().Add(48 * time.Hour)}})
		if c.Status != 201 || !strings.HasPrefix(c.str("key"), "erp_live_"+c.str("prefix")+"_") || c.str("company_id") != "acme" {
			t.Fatalf("create: %d %s", c.Status, c.Raw)
		}
		key, id := c.str("key"), c.str("id")

		intro := func(tok, secret string) answer {
			return e.do(t, req{method: "POST", path: "/api/v1/auth/introspect", bearer: secret, body: map[string]any{"token": tok}})
		}
		const edge = "edge-secret-for-tests"
		a := intro(key, edge)
		if a.Status != 200 || a.data()["active"] != true || a.str("company_id") != "acme" || a.str("scope") != "customers:read invoices:read" ||
			a.str("plan") != "standard" || a.str("key_id") != id || a.data()["exp"] == nil {
			t.Fatalf("introspect: %d %s", a.Status, a.Raw)
		}
		// nobody else learns anything: same 401 for a live key and a made-up one
		live, fake := intro(key, "guess"), intro("erp_live_000000000000_"+strings.Repeat("A", 43), "guess")
		if live.Status != 401 || fake.Status != 401 || live.code() != fake.code() {
			t.Fatalf("unauthenticated introspection: %d/%d", live.Status, fake.Status)
		}
		if a := intro("erp_live_nope", edge); a.data()["active"] != false {
			t.Fatalf("malformed key active: %s", a.Raw)
		}
		// listing: no secrets, use counted
		l := e.do(t, req{method: "GET", path: "/api/v1/auth/api-keys", bearer: at})
		if l.Status != 200 || strings.Contains(l.Raw, key) || strings.Contains(l.Raw, key[len(key)-43:]) {
			t.Fatalf("list: %d %s", l.Status, l.Raw)
		}
		item := l.Body["data"].([]any)[0].(map[string]any)
		if item["use_count"] != float64(1) || item["last_used_at"] == nil {
			t.Fatalf("use not recorded: %v", item)
		}
		// validation and permissions
		for _, bad := range []map[string]any{{"scope": "payroll:read"}, {"scope": ""}, {"scope": "invoices:read", "plan": "enterprise"},
			{"scope": "invoices:read", "expires_at": e.clock.Now().Add(-time.Hour)}} {
			if a := e.do(t, req{method: "POST", path: "/api/v1/auth/api-keys", bearer: at, body: bad}); a.Status != 422 {
				t.Fatalf("create %v: %d %s", bad, a.Status, a.Raw)
			}
		}
		bob := e.session(t, "bob@globex.test", "globex")
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/api-keys", bearer: bob.str("access_token"), body: map[string]any{"scope": "invoices:read"}}); a.Status != 403 {
			t.Fatalf("accountant created a key: %d", a.Status)
		}
		// other company: a globex key is invisible to acme's admin
		bobSub := e.verifySub(t, bob.str("access_token"))
		gk := store.APIKey{ID: uuid.NewString(), CompanyID: "globex", Prefix: "abcdef012345", SecretHash: make([]byte, 32), Scope: []string{"invoices:read"},
			Plan: "free", CreatedBy: bobSub, CreatedAt: e.clock.Now()}
		if err := e.svc.Store().CreateAPIKey(ctx, gk, store.Event{Time: e.clock.Now(), Type: store.EventAPIKeyCreated}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []req{
			{method: "POST", path: "/api/v1/auth/api-keys/" + gk.ID + "/rotate", body: map[string]any{"grace_period": "1h"}},
			{method: "DELETE", path: "/api/v1/auth/api-keys/" + gk.ID},
		} {
			r.bearer = at
			if a := e.do(t, r); a.Status != 404 {
				t.Fatalf("%s %s across companies: %d %s", r.method, r.path, a.Status, a.Raw)
			}
		}
		if l := e.do(t, req{method: "GET", path: "/api/v1/auth/api-keys", bearer: at}); strings.Contains(l.Raw, gk.ID) {
			t.Fatal("acme lists globex's key")
		}
		// rotation with a grace period: both work, then only the new one
		r := e.do(t, req{method: "POST", path: "/api/v1/auth/api-keys/" + id + "/rotate", bearer: at, body: map[string]any{"grace_period": "1h"}})
		if r.Status != 200 || r.str("key") == key {
			t.Fatalf("rotate: %d %s", r.Status, r.Raw)
		}
		newKey := r.str("key")
		if intro(key, edge).data()["active"] != true || intro(newKey, edge).data()["active"] != true {
			t.Fatal("old and new secret not both valid during the grace period")
		}
		e.clock.Add(time.Hour + time.Second)
		if intro(key, edge).data()["active"] != false || intro(newKey, edge).data()["active"] != true {
			t.Fatal("old secret valid after the grace period")
		}
		// expiry
		e.clock.Add(48 * time.Hour)
		if a := intro(newKey, edge); a.data()["active"] != false || a.str("status") != "expired" {
			t.Fatalf("expired key: %s", a.Raw)
		}
		// revoke
		alice2 := e.session(t, "alice@acme.test", "acme")
		c2 := e.do(t, req{method: "POST", path: "/api/v1/auth/api-keys", bearer: alice2.str("access_token"), body: map[string]any{"scope": []string{"products:read"}}})
		if d := e.do(t, req{method: "DELETE", path: "/api/v1/auth/api-keys/" + c2.str("id"), bearer: alice2.str("access_token")}); d.Status != 200 {
			t.Fatalf("revoke: %d %s", d.Status, d.Raw)
		}
		if a := intro(c2.str("key"), edge); a.data()["active"] != false || a.str("status") != "revoked" {
			t.Fatalf("revoked key: %s", a.Raw)
		}
		got, err := e.svc.IntrospectAPIKey(ctx, c2.str("key"))
		if err != nil || got.Active {
			t.Fatalf("in-process introspection of a revoked key: %+v %v", got, err)
		}
	})
}
