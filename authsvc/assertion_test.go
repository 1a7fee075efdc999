package authsvc_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// verifyAssertion checks an edge assertion with golang-jwt against the
// assertion keys of a JWKS: EdDSA, typ erp-edge+jwt, iss, aud, exp.
func verifyAssertion(tok string, keys map[string]ed25519.PublicKey, aud string, now time.Time) (jwt.MapClaims, string, error) {
	var kid string
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != "erp-edge+jwt" {
			return nil, fmt.Errorf("typ = %v", t.Header["typ"])
		}
		kid, _ = t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(authsvc.DefaultIssuer), jwt.WithAudience(aud),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	return claims, kid, err
}

// forge signs claims as typ at+jwt with the stored key kid of a purpose,
// unsealed with the master key the way an attacker holding it would.
func forge(t *testing.T, e *env, master []byte, purpose store.KeyPurpose, claims map[string]any) (string, string) {
	t.Helper()
	keys, err := e.svc.Store().ListSigningKeys(context.Background(), purpose)
	if err != nil || len(keys) == 0 {
		t.Fatalf("%s keys: %v %v", purpose, keys, err)
	}
	k := keys[len(keys)-1]
	sealer, err := authsvc.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := sealer.Open(k.KID, k.SealedPrivate)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "at+jwt", "kid": k.KID})
	body, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(seed), []byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), k.KID
}

func TestAssertionKeys(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		master := make([]byte, 32)
		master[7] = 7
		e := newEnv(t, envOpts{external: external, cfg: authsvc.Config{MasterKey: master}})
		ctx := context.Background()
		s := e.session(t, "alice@acme.test", "acme")
		claims, accessKid := e.verify(t, s.str("access_token"))

		// Published beside the access-token key, with a kid of its own kind.
		raw := e.jwks(t)["raw"]
		edge, err := jwksAssertionKeys(raw)
		if err != nil {
			t.Fatal(err)
		}
		access, _ := jwksKeys(raw)
		if len(edge) != 1 || len(access) != 1 || edge[accessKid] != nil {
			t.Fatalf("JWKS: %d assertion keys, %d access keys (access kid %s)", len(edge), len(access), accessKid)
		}
		var edgeKid string
		for kid := range edge {
			edgeKid = kid
		}
		for kid, pub := range access {
			if pub.Equal(edge[edgeKid]) {
				t.Fatalf("access key %s and assertion key %s are one key", kid, edgeKid)
			}
		}
		// Sealed at rest under the master key, in their own table.
		stored, err := e.svc.Store().ListSigningKeys(ctx, store.KeyAssertion)
		if err != nil || len(stored) != 1 || stored[0].KID != edgeKid {
			t.Fatalf("stored assertion keys: %+v %v", stored, err)
		}
		other := make([]byte, 32)
		otherSealer, _ := authsvc.NewSealer(other)
		if _, err := otherSealer.Open(stored[0].KID, stored[0].SealedPrivate); err == nil {
			t.Fatal("assertion key opens under another master key")
		}

		// An assertion verifies against the published assertion key …
		now := e.clock.Now()
		a := &authsvc.Assertion{Audience: "invoices", Subject: claims["sub"].(string), CompanyID: "acme",
			Roles: []string{"admin"}, Scope: "invoices:read", Plan: "standard", IssuedAt: now, Expiry: now.Add(authsvc.MaxAssertionTTL)}
		tok, err := e.svc.SignAssertion(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		got, kid, err := verifyAssertion(tok, edge, "invoices", now)
		if err != nil || kid != edgeKid {
			t.Fatalf("assertion: kid %s: %v", kid, err)
		}
		if got["sub"] != a.Subject || got["cid"] != "acme" || got["scope"] != "invoices:read" || got["plan"] != "standard" ||
			got["exp"].(float64)-got["iat"].(float64) != 60 || got["jti"] == "" || fmt.Sprint(got["roles"]) != "[admin]" {
			t.Fatalf("assertion claims: %v", got)
		}
		tok2, err := e.svc.SignAssertion(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if got2, _, _ := verifyAssertion(tok2, edge, "invoices", now); got2["jti"] == got["jti"] {
			t.Fatal("two assertions share a jti")
		}
		a.Roles = nil
		tok3, _ := e.svc.SignAssertion(ctx, a)
		if got3, _, _ := verifyAssertion(tok3, edge, "invoices", now); fmt.Sprint(got3["roles"]) != "[]" {
			t.Fatalf("roles of no role: %v", got3["roles"])
		}
		// … and is no access token: not by its keys, not at the service.
		if _, _, err := verifyIndependently(tok, access, authsvc.DefaultIssuer, "invoices", now); err == nil {
			t.Fatal("assertion verified as an access token")
		}
		if r := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: tok}); r.Status != 401 {
			t.Fatalf("assertion accepted as a bearer token: %d %s", r.Status, r.Raw)
		}
		for name, bad := range map[string]authsvc.Assertion{
			"no audience":    {Subject: "u", CompanyID: "acme", IssuedAt: now, Expiry: now.Add(time.Minute)},
			"no company":     {Audience: "invoices", Subject: "u", IssuedAt: now, Expiry: now.Add(time.Minute)},
			"over 60s":       {Audience: "invoices", Subject: "u", CompanyID: "acme", IssuedAt: now, Expiry: now.Add(61 * time.Second)},
			"expired at iat": {Audience: "invoices", Subject: "u", CompanyID: "acme", IssuedAt: now, Expiry: now},
		} {
			if _, err := e.svc.SignAssertion(ctx, &bad); err == nil {
				t.Errorf("%s: signed", name)
			}
		}

		// An access token signed by the assertion key is refused; the same
		// token signed by the access key passes (the forgery is sound).
		at := map[string]any{"iss": authsvc.DefaultIssuer, "aud": authsvc.DefaultAudience, "sub": claims["sub"], "sid": claims["sid"],
			"cid": "acme", "roles": []string{"admin"}, "scope": claims["scope"], "plan": "standard", "jti": "forged",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if forged, _ := forge(t, e, master, store.KeyAccess, at); e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: forged}).Status != 200 {
			t.Fatal("a token signed with the access key was refused: the forgery is broken")
		}
		forged, kid := forge(t, e, master, store.KeyAssertion, at)
		if !strings.HasPrefix(kid, "edge-") {
			t.Fatalf("assertion kid %q", kid)
		}
		if r := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: forged}); r.Status != 401 {
			t.Fatalf("access token signed with the assertion key accepted: %d %s", r.Status, r.Raw)
		}

		// Rotation: published first, signs after the delay, the old key
		// retired once nothing it signed can be alive; access keys untouched.
		newKid, err := e.svc.RotateAssertionKey(ctx, 10*time.Minute)
		if err != nil || !strings.HasPrefix(newKid, "edge-") {
			t.Fatalf("rotate: %q %v", newKid, err)
		}
		raw = e.jwks(t)["raw"]
		if edge, _ = jwksAssertionKeys(raw); len(edge) != 2 || edge[newKid] == nil {
			t.Fatalf("new assertion key not published: %d", len(edge))
		}
		if access, _ = jwksKeys(raw); len(access) != 1 {
			t.Fatalf("assertion rotation changed the access keys: %d", len(access))
		}
		sign := func() string {
			t.Helper()
			now := e.clock.Now()
			tok, err := e.svc.SignAssertion(ctx, &authsvc.Assertion{Audience: "invoices", Subject: "u", CompanyID: "acme", IssuedAt: now, Expiry: now.Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			_, kid, err := verifyAssertion(tok, edge, "invoices", now)
			if err != nil {
				t.Fatal(err)
			}
			return kid
		}
		if kid := sign(); kid != edgeKid {
			t.Fatalf("signed by %s before the publish delay", kid)
		}
		e.clock.Add(10 * time.Minute)
		if kid := sign(); kid != newKid {
			t.Fatalf("signed by %s after the publish delay, want %s", kid, newKid)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(e.svc.SyncKeys(ctx))
		if edge, _ = jwksAssertionKeys(e.jwks(t)["raw"]); edge[edgeKid] == nil {
			t.Fatal("old assertion key retired while its assertions may live")
		}
		e.clock.Add(authsvc.MaxAssertionTTL + authsvc.DefaultKeyReload + 2*time.Minute)
		must(e.svc.SyncKeys(ctx))
		raw = e.jwks(t)["raw"]
		if edge, _ = jwksAssertionKeys(raw); len(edge) != 1 || edge[newKid] == nil {
			t.Fatalf("after the old key's last assertion expired: %d keys", len(edge))
		}
		if access, _ = jwksKeys(raw); access[accessKid] == nil {
			t.Fatal("assertion key retirement retired the access key")
		}
	})
}
