package companyjwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/internal/revocation"
)

// Tokens here are made with golang-jwt, an implementation independent of the
// jwx code under test.

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type fixture struct {
	priv    ed25519.PrivateKey
	ecPriv  *ecdsa.PrivateKey
	v       *Verifier
	fetches atomic.Int64
}

func publicJWK(t testing.TB, pub any, kid, alg string) jwk.Key {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, alg)
	_ = k.Set(jwk.KeyUsageKey, "sig")
	return k
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fixture{priv: priv, ecPriv: ec}
	set := jwk.NewSet()
	_ = set.AddKey(publicJWK(t, pub, "k1", "EdDSA"))
	_ = set.AddKey(publicJWK(t, &ec.PublicKey, "ec1", "ES256"))
	now := func() time.Time { return testNow }
	ks := &KeySet{
		Fetch: func(ctx context.Context) (jwk.Set, error) {
			f.fetches.Add(1)
			return set, nil
		},
		MinRefetch: 10 * time.Second, NegativeTTL: 30 * time.Second, Now: now, BaseContext: context.Background(),
	}
	if _, err := ks.Load(set); err != nil {
		t.Fatal(err)
	}
	f.v = &Verifier{
		Policy:  Policy{Issuer: "https://erpgate.test", Audience: "erpgate", Leeway: 30 * time.Second},
		Keys:    ks,
		Cache:   NewTokenCache(1000),
		Revoked: revocation.NewSet(now),
		Now:     now,
		// as the provider sets it: a current set costs one atomic load
		Staleness: DefaultRevocationStaleness,
	}
	return f
}

func goodClaims() gjwt.MapClaims {
	return gjwt.MapClaims{
		"iss": "https://erpgate.test", "sub": "usr_1", "aud": "erpgate",
		"exp": testNow.Add(10 * time.Minute).Unix(), "iat": testNow.Unix(), "nbf": testNow.Unix(),
		"jti": "j1", "sid": "ses_1", "cid": "acme", "roles": []string{"admin"},
		"scope": "invoices:read invoices:write", "plan": "standard",
	}
}

func (f *fixture) sign(t testing.TB, claims gjwt.MapClaims, mutate func(h map[string]any)) string {
	t.Helper()
	tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "k1"
	tok.Header["typ"] = "at+jwt"
	if mutate != nil {
		mutate(tok.Header)
	}
	s, err := tok.SignedString(f.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	good := f.sign(t, goodClaims(), nil)
	c, err := f.v.Verify(ctx, good)
	if err != nil || c.CompanyID != "acme" || c.Subject != "usr_1" || !c.HasScope("invoices:write") || c.HasScope("invoices") {
		t.Fatalf("good token: %+v %v", c, err)
	}

	with := func(k string, v any) gjwt.MapClaims {
		c := goodClaims()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hdr := func(k string, v any) func(map[string]any) {
		return func(h map[string]any) {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
	}
	otherPub, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	_ = otherPub
	wrongKey := func() string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = "k1", "at+jwt"
		s, _ := tok.SignedString(otherPriv)
		return s
	}()
	// key confusion: HS256 keyed with the public key's bytes
	confusion := func() string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodHS256, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = "k1", "at+jwt"
		pub := f.priv.Public().(ed25519.PublicKey)
		s, _ := tok.SignedString([]byte(pub))
		return s
	}()
	// ES256 header on the EdDSA key's kid, signed by the EC key
	algMismatch := func() string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodES256, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = "k1", "at+jwt"
		s, _ := tok.SignedString(f.ecPriv)
		return s
	}()
	ecGood := func() string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodES256, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = "ec1", "at+jwt"
		s, _ := tok.SignedString(f.ecPriv)
		return s
	}()
	parts := strings.Split(good, ".")
	none := b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": "k1"}) + "." + parts[1] + "."
	// signed by hand (crypto/ed25519): no JWT library writes duplicate claims
	dupInput := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(
		`{"iss":"https://erpgate.test","aud":"erpgate","sub":"usr_1","sid":"s","cid":"acme","exp":%d,"cid":"globex"}`, testNow.Add(time.Minute).Unix())))
	dupClaims := dupInput + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(f.priv, []byte(dupInput)))
	padded := parts[0] + "." + parts[1] + "==." + parts[2]
	// handSigned signs a header and claims written by hand (crypto/ed25519):
	// no JSON encoder writes case variants, duplicates or invalid UTF-8.
	handSigned := func(header, claims string) string {
		in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(f.priv, []byte(in)))
	}
	goodHeader := `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`
	claimsWith := func(extra string) string {
		return fmt.Sprintf(`{"iss":"https://erpgate.test","aud":"erpgate","sub":"usr_1","sid":"s","cid":"acme","exp":%d%s}`,
			testNow.Add(time.Minute).Unix(), extra)
	}
	if _, err := f.v.Verify(ctx, handSigned(goodHeader, claimsWith(`,"scope":"invoices:read"`))); err != nil {
		t.Fatalf("hand-signed good token: %v", err)
	}
	// a token with a base64url-only character ('-' or '_'), rewritten in standard base64
	urlOnly := good
	for i := 0; !strings.ContainsAny(urlOnly, "-_"); i++ {
		c := goodClaims()
		c["jti"] = fmt.Sprint("j", i)
		urlOnly = f.sign(t, c, nil)
	}
	stdB64 := strings.ReplaceAll(strings.ReplaceAll(urlOnly, "-", "+"), "_", "/")

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMissing},
		{"garbage", "not-a-token", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", good + ".x", ErrMalformed},
		{"padding", padded, ErrMalformed},
		{"huge", strings.Repeat("a", 9000) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"alg none", none, ErrMalformed},
		{"wrong key", wrongKey, ErrSignature},
		{"key confusion HS256", confusion, ErrSignature},
		{"alg mismatch", algMismatch, ErrSignature},
		{"expired", f.sign(t, with("exp", testNow.Add(-time.Minute).Unix()), nil), ErrExpired},
		{"no exp", f.sign(t, with("exp", nil), nil), ErrClaims},
		{"not yet valid", f.sign(t, with("nbf", testNow.Add(5*time.Minute).Unix()), nil), ErrClaims},
		{"foreign issuer", f.sign(t, with("iss", "https://evil.test"), nil), ErrClaims},
		{"issuer prefix", f.sign(t, with("iss", "https://erpgate.test/"), nil), ErrClaims},
		{"foreign audience", f.sign(t, with("aud", []string{"other"}), nil), ErrClaims},
		{"no company", f.sign(t, with("cid", nil), nil), ErrClaims},
		{"roles wrong type", f.sign(t, with("roles", "admin"), nil), ErrClaims},
		{"wrong typ", f.sign(t, goodClaims(), hdr("typ", "JWT")), ErrClaims},
		{"no typ", f.sign(t, goodClaims(), hdr("typ", nil)), ErrClaims},
		{"unknown kid", f.sign(t, goodClaims(), hdr("kid", "nope")), ErrUnknownKey},
		{"no kid", f.sign(t, goodClaims(), hdr("kid", nil)), ErrMalformed},
		{"kid path traversal", f.sign(t, goodClaims(), hdr("kid", "../../etc/passwd")), ErrUnknownKey},
		{"crit", f.sign(t, goodClaims(), hdr("crit", []string{"exp"})), ErrMalformed},
		{"jku", f.sign(t, goodClaims(), hdr("jku", "https://evil.test/jwks.json")), ErrMalformed},
		{"x5u", f.sign(t, goodClaims(), hdr("x5u", "https://evil.test/cert")), ErrMalformed},
		{"embedded jwk", f.sign(t, goodClaims(), hdr("jwk", map[string]any{"kty": "OKP"})), ErrMalformed},
		{"x5c", f.sign(t, goodClaims(), hdr("x5c", []string{"MIIB"})), ErrMalformed},
		{"duplicate claims", dupClaims, ErrClaims},
		{"cid and CID", handSigned(goodHeader, claimsWith(`,"CID":"globex"`)), ErrClaims},
		{"CID before cid", handSigned(goodHeader, `{"CID":"globex",`+claimsWith("")[1:]), ErrClaims},
		{"duplicate sub", handSigned(goodHeader, claimsWith(`,"sub":"usr_2"`)), ErrClaims},
		{"escaped duplicate cid", handSigned(goodHeader, claimsWith(`,"c\u0069d":"globex"`)), ErrClaims},
		{"cid a number", f.sign(t, with("cid", 123), nil), ErrClaims},
		{"sub an object", f.sign(t, with("sub", map[string]any{"id": "usr_1"}), nil), ErrClaims},
		{"exp a string", f.sign(t, with("exp", fmt.Sprint(testNow.Add(time.Minute).Unix())), nil), ErrClaims},
		{"aud an object", f.sign(t, with("aud", map[string]any{"erpgate": true}), nil), ErrClaims},
		{"invalid UTF-8 in a claim", handSigned(goodHeader, claimsWith(",\"scope\":\"invoices:read\xff\"")), ErrClaims},
		{"lone surrogate in a claim", handSigned(goodHeader, claimsWith(`,"plan":"\ud800"`)), ErrClaims},
		{"Exp instead of exp", f.sign(t, func() gjwt.MapClaims {
			c := with("exp", nil)
			c["Exp"] = testNow.Add(time.Minute).Unix()
			return c
		}(), nil), ErrClaims},
		{"ALG beside alg", handSigned(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt","ALG":"EdDSA"}`, claimsWith("")), ErrMalformed},
		{"Typ instead of typ", handSigned(`{"alg":"EdDSA","kid":"k1","Typ":"at+jwt"}`, claimsWith("")), ErrMalformed},
		{"KID instead of kid", handSigned(`{"alg":"EdDSA","KID":"k1","typ":"at+jwt"}`, claimsWith("")), ErrMalformed},
		{"alg twice", handSigned(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt","alg":"EdDSA"}`, claimsWith("")), ErrMalformed},
		{"invalid UTF-8 in the header", handSigned("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"at+jwt\",\"x\":\"\xff\"}", claimsWith("")), ErrMalformed},
		{"standard base64", stdB64, ErrMalformed},
		{"deep nesting", f.sign(t, with("x", json.RawMessage(strings.Repeat("[", 3000)+strings.Repeat("]", 3000))), nil), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token == good {
				t.Fatal("case reuses the good token")
			}
			_, err := f.v.Verify(ctx, tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ES256 key verifies its own tokens", func(t *testing.T) {
		if _, err := f.v.Verify(ctx, ecGood); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRevocationAndCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok := f.sign(t, goodClaims(), nil)
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.v.Cache.Get(tok); !ok {
		t.Fatal("verified token not cached")
	}
	f.v.Revoked.Add("ses_1", testNow.Add(time.Hour))
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("cached token after revocation: %v", err)
	}
	// past exp the cache does not help
	f2 := newFixture(t)
	c := goodClaims()
	c["exp"] = testNow.Add(10 * time.Second).Unix()
	tok2 := f2.sign(t, c, nil)
	if _, err := f2.v.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	f2.v.Now = func() time.Time { return testNow.Add(time.Minute) }
	if _, err := f2.v.Verify(ctx, tok2); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past exp: %v", err)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := f.sign(t, goodClaims(), func(h map[string]any) { h["kid"] = fmt.Sprint("random-", i) })
			if _, err := f.v.Verify(ctx, tok); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("random kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("500 random kids caused %d fetches, want 1", n)
	}
}

func TestNewKeyIsFetchedOnce(t *testing.T) {
	t.Parallel()
	pub1, priv1, _ := ed25519.GenerateKey(rand.Reader)
	pub2, priv2, _ := ed25519.GenerateKey(rand.Reader)
	var mu sync.Mutex
	set := jwk.NewSet()
	_ = set.AddKey(publicJWK(t, pub1, "old", "EdDSA"))
	var fetches atomic.Int64
	now := testNow
	ks := &KeySet{
		Fetch: func(ctx context.Context) (jwk.Set, error) {
			fetches.Add(1)
			mu.Lock()
			defer mu.Unlock()
			return set.Clone()
		},
		MinRefetch: 10 * time.Second, NegativeTTL: 30 * time.Second,
		Now: func() time.Time { return now }, BaseContext: context.Background(),
	}
	_, _ = ks.Load(set)
	v := &Verifier{Policy: Policy{Issuer: "https://erpgate.test", Audience: "erpgate"}, Keys: ks,
		Revoked: revocation.NewSet(ks.Now), Now: ks.Now}
	sign := func(priv ed25519.PrivateKey, kid string) string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		s, _ := tok.SignedString(priv)
		return s
	}
	oldTok := sign(priv1, "old")
	mu.Lock()
	_ = set.AddKey(publicJWK(t, pub2, "new", "EdDSA")) // published a second ago
	mu.Unlock()
	if _, err := v.Verify(context.Background(), sign(priv2, "new")); err != nil {
		t.Fatalf("token of a just-published key: %v", err)
	}
	if _, err := v.Verify(context.Background(), oldTok); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches", fetches.Load())
	}
	// the retired key leaves the set: its tokens stop verifying on the next refresh
	mu.Lock()
	_ = set.RemoveKey(mustKey(set, "old"))
	mu.Unlock()
	if err := ks.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), oldTok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
}

// An edge assertion key (kid "edge-…") in the issuer's JWKS verifies no
// access token, and its kid causes no fetch.
func TestAssertionKeyIsNoAccessTokenKey(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	accessPub, _, _ := ed25519.GenerateKey(rand.Reader)
	set := jwk.NewSet()
	_ = set.AddKey(publicJWK(t, pub, "edge-a1", "EdDSA"))
	_ = set.AddKey(publicJWK(t, accessPub, "k1", "EdDSA"))
	var fetches atomic.Int64
	ks := &KeySet{
		Fetch:      func(ctx context.Context) (jwk.Set, error) { fetches.Add(1); return set, nil },
		MinRefetch: time.Nanosecond, NegativeTTL: time.Nanosecond,
		Now: func() time.Time { return testNow }, BaseContext: context.Background(),
	}
	if n, err := ks.Load(set); err != nil || n != 1 {
		t.Fatalf("loaded %d keys (%v), want the access-token key alone", n, err)
	}
	v := &Verifier{Policy: Policy{Issuer: "https://erpgate.test", Audience: "erpgate"}, Keys: ks,
		Revoked: revocation.NewSet(ks.Now), Now: ks.Now}
	tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, goodClaims())
	tok.Header["kid"], tok.Header["typ"] = "edge-a1", "at+jwt"
	signed, _ := tok.SignedString(priv)
	for range 3 {
		if _, err := v.Verify(context.Background(), signed); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("access token signed by an assertion key: %v", err)
		}
	}
	if n := fetches.Load(); n != 0 {
		t.Fatalf("an assertion kid caused %d fetches", n)
	}
}

func mustKey(set jwk.Set, kid string) jwk.Key {
	k, _ := set.LookupKeyID(kid)
	return k
}

func BenchmarkVerifyCached(b *testing.B) {
	f := newFixture(b)
	tok := f.sign(b, goodClaims(), nil)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyEd25519(b *testing.B) {
	f := newFixture(b)
	f.v.Cache = nil
	tok := f.sign(b, goodClaims(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUnknownKidWhileTheKeySetIsUnreachable: a token of a key the edge
// does not hold cannot be checked while the key set cannot be fetched
// (ErrKeysUnavailable, answered 503), is invalid once a fetch succeeded
// without it (ErrUnknownKey alone, 401), and a known key keeps verifying.
func TestUnknownKidWhileTheKeySetIsUnreachable(t *testing.T) {
	t.Parallel()
	pub1, priv1, _ := ed25519.GenerateKey(rand.Reader)
	_, priv2, _ := ed25519.GenerateKey(rand.Reader)
	set := jwk.NewSet()
	_ = set.AddKey(publicJWK(t, pub1, "k1", "EdDSA"))
	var down atomic.Bool
	var tick atomic.Int64 // each call a second later: no rate limit in the way
	clock := func() time.Time { return testNow.Add(time.Duration(tick.Add(1)) * time.Second) }
	ks := &KeySet{
		Fetch: func(ctx context.Context) (jwk.Set, error) {
			if down.Load() {
				return nil, errors.New("dial tcp 127.0.0.1:1: connection refused")
			}
			return set, nil
		},
		MinRefetch: time.Nanosecond, NegativeTTL: time.Nanosecond,
		Now: clock, BaseContext: context.Background(),
	}
	if err := ks.Refresh(); err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Policy: Policy{Issuer: "https://erpgate.test", Audience: "erpgate", Leeway: time.Hour}, Keys: ks,
		Revoked: revocation.NewSet(ks.Now), Now: func() time.Time { return testNow }}
	sign := func(priv ed25519.PrivateKey, kid string) string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, goodClaims())
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		s, _ := tok.SignedString(priv)
		return s
	}
	down.Store(true)
	_ = ks.Refresh()
	if _, err := v.Verify(context.Background(), sign(priv2, "k2")); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("unknown kid, key set unreachable: %v, want ErrKeysUnavailable", err)
	}
	if _, err := v.Verify(context.Background(), sign(priv1, "k1")); err != nil {
		t.Fatalf("known kid, key set unreachable: %v", err)
	}
	down.Store(false)
	if _, err := v.Verify(context.Background(), sign(priv2, "k2")); !errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("unknown kid, key set fetched: %v, want ErrUnknownKey alone", err)
	}
}
