package jwtverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Tokens here are signed with golang-jwt or by hand (crypto/ed25519): an
// implementation other than the jwx code under test.

func signRaw(priv ed25519.PrivateKey, header, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	return in + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

func TestParseAndVerify(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	key := EdDSAKey("k1", pub)
	const payload = `{"sub":"u1"}`
	good := signRaw(priv, `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`, payload)
	tk, err := Parse(good, 0)
	if err != nil || tk.Header != (Header{Alg: "EdDSA", Kid: "k1", Typ: "at+jwt"}) {
		t.Fatalf("Parse: %+v %v", tk.Header, err)
	}
	if got, err := tk.Verify(key); err != nil || string(got) != payload {
		t.Fatalf("Verify: %q %v", got, err)
	}
	hp := strings.SplitN(good, ".", 3)
	last := hp[2][len(hp[2])-1]
	alt := b64url[strings.IndexByte(b64url, last)|1]
	for _, tc := range []struct {
		name, token string
		want        error // from Parse, or else from Verify
	}{
		{"empty", "", ErrMalformed},
		{"two parts", hp[0] + "." + hp[1], ErrMalformed},
		{"four parts", good + ".x", ErrMalformed},
		{"empty signature (alg none)", hp[0] + "." + hp[1] + ".", ErrMalformed},
		{"padded signature", good + "==", ErrMalformed},
		{"standard base64", hp[0] + "." + hp[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(hp[2]) + "+/", ErrMalformed},
		{"non-canonical last character", hp[0] + "." + hp[1] + "." + hp[2][:len(hp[2])-1] + string(alt), ErrMalformed},
		{"too long", signRaw(priv, `{"alg":"EdDSA","kid":"k1"}`, `{"x":"`+strings.Repeat("a", 9000)+`"}`), ErrMalformed},
		{"crit", signRaw(priv, `{"alg":"EdDSA","kid":"k1","crit":["exp"]}`, payload), ErrMalformed},
		{"jku", signRaw(priv, `{"alg":"EdDSA","kid":"k1","jku":"https://evil.test"}`, payload), ErrMalformed},
		{"x5u", signRaw(priv, `{"alg":"EdDSA","kid":"k1","x5u":"https://evil.test"}`, payload), ErrMalformed},
		{"jwk", signRaw(priv, `{"alg":"EdDSA","kid":"k1","jwk":{"kty":"OKP"}}`, payload), ErrMalformed},
		{"x5c", signRaw(priv, `{"alg":"EdDSA","kid":"k1","x5c":["MIIB"]}`, payload), ErrMalformed},
		{"b64", signRaw(priv, `{"alg":"EdDSA","kid":"k1","b64":true}`, payload), ErrMalformed},
		{"no kid", signRaw(priv, `{"alg":"EdDSA"}`, payload), ErrMalformed},
		{"kid too long", signRaw(priv, `{"alg":"EdDSA","kid":"`+strings.Repeat("k", 257)+`"}`, payload), ErrMalformed},
		{"KID beside kid", signRaw(priv, `{"alg":"EdDSA","kid":"k1","KID":"k2"}`, payload), ErrMalformed},
		{"alg twice", signRaw(priv, `{"alg":"EdDSA","kid":"k1","alg":"EdDSA"}`, payload), ErrMalformed},
		{"header not an object", signRaw(priv, `["EdDSA"]`, payload), ErrMalformed},
		{"invalid UTF-8 in the header", signRaw(priv, "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"x\":\"\xff\"}", payload), ErrMalformed},
		{"no alg", signRaw(priv, `{"kid":"k1"}`, payload), ErrAlgorithm},
		{"alg none", signRaw(priv, `{"alg":"none","kid":"k1"}`, payload), ErrAlgorithm},
		{"alg HS256", signRaw(priv, `{"alg":"HS256","kid":"k1"}`, payload), ErrAlgorithm},
		{"other key", signRaw(other, `{"alg":"EdDSA","kid":"k1"}`, payload), ErrSignature},
		{"payload swapped", hp[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u2"}`)) + "." + hp[2], ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := Parse(tc.token, 0)
			if err == nil {
				_, err = tk.Verify(key)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestStrictB64(t *testing.T) {
	t.Parallel()
	strict := base64.RawURLEncoding.Strict()
	for _, s := range []string{"", "A", "AA", "AB", "AAA", "AAB", "AAE", "AAAA", "_-_-", "a+b/", "YQ", "YR", "YWI", "YWJ", "YWJj", "=", "YQ=="} {
		_, err := strict.DecodeString(s)
		if got := strictB64(s); got != (err == nil) {
			t.Errorf("strictB64(%q) = %v, base64 strict decoding says %v", s, got, err)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key := func(raw any, kid string, alg jwa.SignatureAlgorithm, use string) jwk.Key {
		k, err := jwk.Import(raw)
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, kid)
		if alg != (jwa.SignatureAlgorithm{}) {
			_ = k.Set(jwk.AlgorithmKey, alg)
		}
		if use != "" {
			_ = k.Set(jwk.KeyUsageKey, use)
		}
		return k
	}
	set := jwk.NewSet()
	for _, k := range []jwk.Key{
		key(edPub, "at-ed", jwa.EdDSA(), "sig"),
		key(&ec.PublicKey, "at-ec", jwa.ES256(), ""),
		key(edPub, "at-enc", jwa.EdDSA(), "enc"),
		key(edPub, "at-no-alg", jwa.SignatureAlgorithm{}, "sig"),
		key([]byte("0123456789abcdef0123456789abcdef"), "at-hmac", jwa.HS256(), "sig"),
		key(edPub, strings.Repeat("k", 257), jwa.EdDSA(), "sig"),
		key(edPub, "edge-1", jwa.EdDSA(), "sig"),
		key(edPub, "edge-no-use", jwa.EdDSA(), ""),
		key(&ec.PublicKey, "edge-ec", jwa.ES256(), "sig"),
		key(edPub, "edge-enc", jwa.EdDSA(), "enc"),
	} {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		p    Purpose
		want []string
	}{{AccessKeys, []string{"at-ec", "at-ed"}}, {AssertionKeys, []string{"edge-1", "edge-no-use"}}} {
		m := Select(set, tc.p)
		var got []string
		for _, kid := range tc.want {
			k, ok := m[kid]
			if !ok || k.Kid != kid || k.Public == nil {
				t.Errorf("purpose %d: %s not selected: %+v", tc.p, kid, k)
			}
			got = append(got, kid)
		}
		if len(m) != len(tc.want) {
			t.Errorf("purpose %d: selected %d keys, want %v", tc.p, len(m), got)
		}
	}
	if _, ok := Select(set, AssertionKeys)["edge-1"].Public.(ed25519.PublicKey); !ok {
		t.Error("an assertion key is not an ed25519.PublicKey")
	}
}

func TestVerifyAccess(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ks := &KeySet{Now: func() time.Time { return now }, MinRefetch: time.Hour, BaseContext: context.Background(),
		Fetch: func(context.Context) (jwk.Set, error) { return nil, errors.New("no fetch in this test") }}
	set := jwk.NewSet()
	k, _ := jwk.Import(pub)
	_ = k.Set(jwk.KeyIDKey, "k1")
	_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
	_ = set.AddKey(k)
	if _, err := ks.Load(set); err != nil {
		t.Fatal(err)
	}
	claims := func(change map[string]any) gjwt.MapClaims {
		c := gjwt.MapClaims{"iss": "https://erpgate.test", "aud": "erpgate", "sub": "u1", "sid": "s1", "cid": "acme",
			"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "roles": []string{"admin"}}
		for k, v := range change {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	sign := func(typ string, c gjwt.MapClaims) string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, c)
		tok.Header["kid"], tok.Header["typ"] = "k1", typ
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	p := &AccessPolicy{Issuer: "https://erpgate.test", Audience: "erpgate", Leeway: 30 * time.Second}
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
		c, key, err := VerifyAccess(t.Context(), p, ks.Lookup, sign(typ, claims(nil)), now)
		if err != nil || c.CompanyID != "acme" || c.SessionID != "s1" || key.Kid != "k1" || !c.Expiry.Equal(now.Add(time.Minute)) {
			t.Fatalf("typ %s: %+v %v", typ, c, err)
		}
	}
	for _, tc := range []struct {
		name  string
		token string
		p     AccessPolicy
		want  error
	}{
		{"typ JWT", sign("JWT", claims(nil)), *p, ErrType},
		{"exp now, no expiry leeway", sign("at+jwt", claims(map[string]any{"exp": now.Unix()})), *p, ErrExpired},
		{"exp 10 s ago, 30 s expiry leeway", sign("at+jwt", claims(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})), AccessPolicy{Issuer: p.Issuer, Audience: p.Audience, ExpiryLeeway: 30 * time.Second}, nil},
		{"no exp", sign("at+jwt", claims(map[string]any{"exp": nil})), *p, ErrClaims},
		{"nbf within leeway", sign("at+jwt", claims(map[string]any{"nbf": now.Add(20 * time.Second).Unix()})), *p, nil},
		{"nbf past leeway", sign("at+jwt", claims(map[string]any{"nbf": now.Add(40 * time.Second).Unix()})), *p, ErrClaims},
		{"iat past leeway", sign("at+jwt", claims(map[string]any{"iat": now.Add(40 * time.Second).Unix()})), *p, ErrClaims},
		{"iss", sign("at+jwt", claims(map[string]any{"iss": "https://erpgate.test/"})), *p, ErrClaims},
		{"aud in an array", sign("at+jwt", claims(map[string]any{"aud": []string{"x", "erpgate"}})), *p, nil},
		{"aud other", sign("at+jwt", claims(map[string]any{"aud": "other"})), *p, ErrClaims},
		{"no sid", sign("at+jwt", claims(map[string]any{"sid": nil})), *p, ErrClaims},
		{"65 roles", sign("at+jwt", claims(map[string]any{"roles": make([]string, 65)})), *p, ErrClaims},
		{"cid a number", sign("at+jwt", claims(map[string]any{"cid": 7})), *p, ErrClaims},
		{"assertion kid", signRaw(priv, `{"alg":"EdDSA","kid":"edge-1","typ":"at+jwt"}`, `{}`), *p, ErrUnknownKey},
		{"unknown kid", signRaw(priv, `{"alg":"EdDSA","kid":"k2","typ":"at+jwt"}`, `{}`), *p, ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := VerifyAccess(t.Context(), &tc.p, ks.Lookup, tc.token, now)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestLoadKeepsLastGoodKeys: a set whose keys are all of the other purpose
// keeps the keys held; an empty set is the issuer withdrawing them all.
func TestLoadKeepsLastGoodKeys(t *testing.T) {
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	withKid := func(kid string) jwk.Set {
		k, _ := jwk.Import(pub)
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
		set := jwk.NewSet()
		_ = set.AddKey(k)
		return set
	}
	ks := &KeySet{}
	if n, err := ks.Load(withKid("k1")); n != 1 || err != nil {
		t.Fatalf("first set: %d %v", n, err)
	}
	if _, err := ks.Load(withKid("edge-1")); !errors.Is(err, ErrNoUsableKey) {
		t.Fatalf("assertion keys only: %v", err)
	}
	if _, ok := ks.Get("k1"); !ok {
		t.Fatal("a set without a usable key dropped the last good keys")
	}
	if n, err := ks.Load(jwk.NewSet()); n != 0 || err != nil || ks.Len() != 0 {
		t.Fatalf("empty set: %d %v, %d keys held", n, err, ks.Len())
	}
}

// TestLookupConcurrentNewKid: requests that present a key published a
// moment ago, at once, all find it: one fetches, and none is refused as
// "unknown key" because its first look came before that fetch ended and its
// turn after it (within MinRefetch of it). Seen at the edge: a valid token
// refused with 401 right after a key was published.
func TestLookupConcurrentNewKid(t *testing.T) {
	t.Parallel()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	for round := range 300 {
		kid := "at-" + strings.Repeat("k", round%7+1)
		set := jwk.NewSet()
		k, _ := jwk.Import(pub)
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
		_ = set.AddKey(k)
		ks := &KeySet{Now: time.Now, MinRefetch: time.Hour, BaseContext: context.Background(),
			Fetch: func(context.Context) (jwk.Set, error) { return set, nil }}
		const n = 8
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				_, err := ks.Lookup(context.Background(), kid)
				errs <- err
			}()
		}
		close(start)
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: a lookup of a key the fetch found: %v", round, err)
			}
		}
	}
}
