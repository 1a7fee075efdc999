package edgeassert

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/internal/jwtverify"
)

const testIssuer = "https://edge.test"

// edge plays the erpgate edge: Ed25519 keys for assertions (kid edge-…) and
// for access tokens (kid at-…), published by a real JWKS server that counts
// its fetches.
type edge struct {
	t       testing.TB
	mu      sync.Mutex
	priv    map[string]ed25519.PrivateKey
	publish map[string]bool // kid → published
	fetches atomic.Int64
	srv     *httptest.Server
}

func newEdge(t testing.TB, kids ...string) *edge {
	e := &edge{t: t, priv: map[string]ed25519.PrivateKey{}, publish: map[string]bool{}}
	for _, kid := range kids {
		e.addKey(kid, true)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e.jwks())
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *edge) addKey(kid string, published bool) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.priv[kid], e.publish[kid] = priv, published
	e.mu.Unlock()
}

func (e *edge) setPublished(kid string, on bool) {
	e.mu.Lock()
	e.publish[kid] = on
	e.mu.Unlock()
}

func (e *edge) jwks() jwk.Set {
	e.mu.Lock()
	defer e.mu.Unlock()
	set := jwk.NewSet()
	for kid, priv := range e.priv {
		if !e.publish[kid] {
			continue
		}
		k, err := jwk.Import(priv.Public())
		if err != nil {
			e.t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
		_ = k.Set(jwk.KeyUsageKey, "sig")
		_ = set.AddKey(k)
	}
	return set
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// signRaw signs header and payload, given as JSON text, with kid's key.
func (e *edge) signRaw(kid, hdr, payload string) string {
	e.mu.Lock()
	priv := e.priv[kid]
	e.mu.Unlock()
	in := b64([]byte(hdr)) + "." + b64([]byte(payload))
	return in + "." + b64(ed25519.Sign(priv, []byte(in)))
}

// claims of a good assertion for invoices, with changes (nil deletes).
func claims(now time.Time, change map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "aud": "invoices", "sub": "usr_alice", "cid": "acme",
		"roles": []string{"admin"}, "scope": "invoices:read invoices:write", "plan": "standard",
		"iat": now.Unix(), "exp": now.Add(60 * time.Second).Unix(), "jti": "a-1",
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (e *edge) assertion(now time.Time, change map[string]any) string {
	return e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1"}`, mustJSON(claims(now, change)))
}

func newVerifier(t testing.TB, e *edge, now func() time.Time, change func(*Config)) *Verifier {
	cfg := Config{JWKSURL: e.srv.URL, Issuer: testIssuer, Audience: "invoices", Now: now}
	if change != nil {
		change(&cfg)
	}
	v, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1", "at-1")
	e.addKey("edge-hidden", false)
	now := time.Now()
	v := newVerifier(t, e, func() time.Time { return now }, func(c *Config) { c.CacheSize = -1 })

	good := e.assertion(now, nil)
	parts := strings.Split(good, ".")
	edgeHdr := `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1"}`
	goodClaims := mustJSON(claims(now, nil))
	pub := e.priv["edge-1"].Public().(ed25519.PublicKey)
	hs256 := func() string { // key confusion: the Ed25519 public key as an HMAC secret
		in := b64([]byte(`{"alg":"HS256","typ":"erp-edge+jwt","kid":"edge-1"}`)) + "." + b64([]byte(goodClaims))
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}()
	otherKey := func() string {
		_, p, _ := ed25519.GenerateKey(rand.Reader)
		in := b64([]byte(edgeHdr)) + "." + b64([]byte(goodClaims))
		return in + "." + b64(ed25519.Sign(p, []byte(in)))
	}()

	tests := []struct {
		name     string
		token    string
		audience string // default invoices
		want     error  // nil: accepted
	}{
		{"good", good, "", nil},
		{"aud as a one-element array", e.assertion(now, map[string]any{"aud": []string{"invoices"}}), "", nil},
		{"no nbf, no jti, no roles", e.assertion(now, map[string]any{"jti": nil, "roles": nil}), "", nil},
		{"empty", "", "", ErrMissing},
		{"access token offered as assertion", e.signRaw("at-1", `{"alg":"EdDSA","typ":"at+jwt","kid":"at-1"}`,
			mustJSON(claims(now, map[string]any{"aud": "erpgate", "exp": now.Add(15 * time.Minute).Unix(), "sid": "s1"}))), "", ErrType},
		{"access key relabelled as assertion", e.signRaw("at-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"at-1"}`, goodClaims), "", ErrUnknownKey},
		{"other audience", good, "ledger", ErrAudience},
		{"signed for another backend", e.assertion(now, map[string]any{"aud": "ledger"}), "", ErrAudience},
		{"two audiences", e.assertion(now, map[string]any{"aud": []string{"invoices", "ledger"}}), "", ErrAudience},
		{"expired", e.assertion(now.Add(-2*time.Minute), nil), "", ErrExpired},
		{"no exp", e.assertion(now, map[string]any{"exp": nil}), "", ErrClaims},
		{"no iat", e.assertion(now, map[string]any{"iat": nil}), "", ErrClaims},
		{"iat in the future", e.assertion(now.Add(time.Minute), nil), "", ErrClaims},
		{"not yet valid", e.assertion(now, map[string]any{"nbf": now.Add(30 * time.Second).Unix()}), "", ErrClaims},
		{"lifetime over 60s", e.assertion(now, map[string]any{"exp": now.Add(90 * time.Second).Unix()}), "", ErrClaims},
		{"lifetime of 62s (no leeway between one signer's iat and exp)", e.assertion(now, map[string]any{"exp": now.Add(62 * time.Second).Unix()}), "", ErrClaims},
		{"alg none", b64([]byte(`{"alg":"none","typ":"erp-edge+jwt","kid":"edge-1"}`)) + "." + parts[1] + ".", "", ErrMalformed},
		{"alg none with a signature", b64([]byte(`{"alg":"none","typ":"erp-edge+jwt","kid":"edge-1"}`)) + "." + parts[1] + "." + parts[2], "", ErrAlgorithm},
		{"HS256 key confusion", hs256, "", ErrAlgorithm},
		{"Ed25519 alg name", e.signRaw("edge-1", `{"alg":"Ed25519","typ":"erp-edge+jwt","kid":"edge-1"}`, goodClaims), "", ErrAlgorithm},
		{"signed by another key", otherKey, "", ErrSignature},
		{"payload changed", parts[0] + "." + b64([]byte(mustJSON(claims(now, map[string]any{"cid": "globex"})))) + "." + parts[2], "", ErrSignature},
		{"unknown kid", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-9"}`, goodClaims), "", ErrUnknownKey},
		{"unpublished edge key", e.signRaw("edge-hidden", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-hidden"}`, goodClaims), "", ErrUnknownKey},
		{"non-edge kid", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"key-1"}`, goodClaims), "", ErrUnknownKey},
		{"no kid", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt"}`, goodClaims), "", ErrMalformed},
		{"typ in another case", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"ERP-EDGE+JWT","kid":"edge-1"}`, goodClaims), "", ErrType},
		{"no typ", e.signRaw("edge-1", `{"alg":"EdDSA","kid":"edge-1"}`, goodClaims), "", ErrType},
		{"wrong iss", e.assertion(now, map[string]any{"iss": "https://evil.test"}), "", ErrClaims},
		{"no cid", e.assertion(now, map[string]any{"cid": nil}), "", ErrClaims},
		{"no sub", e.assertion(now, map[string]any{"sub": nil}), "", ErrClaims},
		{"cid a number", e.assertion(now, map[string]any{"cid": 7}), "", ErrClaims},
		{"crit", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","crit":["exp"]}`, goodClaims), "", ErrMalformed},
		{"jku", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","jku":"https://evil.test/jwks"}`, goodClaims), "", ErrMalformed},
		{"embedded jwk", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","jwk":{"kty":"OKP"}}`, goodClaims), "", ErrMalformed},
		{"x5u", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","x5u":"https://evil.test/c"}`, goodClaims), "", ErrMalformed},
		{"x5c", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","x5c":["AA"]}`, goodClaims), "", ErrMalformed},
		{"duplicate claim", e.signRaw("edge-1", edgeHdr, strings.Replace(goodClaims, `"cid":"acme"`, `"cid":"acme","cid":"globex"`, 1)), "", ErrClaims},
		{"duplicate claim in another case", e.signRaw("edge-1", edgeHdr, strings.Replace(goodClaims, `"cid":"acme"`, `"cid":"acme","CID":"globex"`, 1)), "", ErrClaims},
		{"claim name in another case only", e.signRaw("edge-1", edgeHdr, strings.Replace(goodClaims, `"cid":"acme"`, `"CID":"acme"`, 1)), "", ErrClaims},
		{"duplicate header member", e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-1","kid":"edge-2"}`, goodClaims), "", ErrMalformed},
		{"trailing data in claims", e.signRaw("edge-1", edgeHdr, goodClaims+"{}"), "", ErrClaims},
		{"invalid UTF-8 in claims", e.signRaw("edge-1", edgeHdr, strings.Replace(goodClaims, `"acme"`, "\"ac\xffme\"", 1)), "", ErrClaims},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], "", ErrMalformed},
		{"standard base64 alphabet", "+" + parts[0][1:] + "." + parts[1] + "." + parts[2], "", ErrMalformed},
		{"not base64", "!!!." + parts[1] + "." + parts[2], "", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], "", ErrMalformed},
		{"four parts", good + ".x", "", ErrMalformed},
		{"huge", strings.Repeat("a", 9000), "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aud := tt.audience
			if aud == "" {
				aud = "invoices"
			}
			id, err := v.Verify(t.Context(), tt.token, aud)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if id.Company != "acme" || id.User != "usr_alice" || id.Audience != "invoices" {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if id != nil {
				t.Fatalf("identity %+v with an error", id)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1")
	now := time.Now()
	v := newVerifier(t, e, func() time.Time { return now }, nil)
	id, err := v.Verify(t.Context(), e.assertion(now, nil), "invoices")
	if err != nil {
		t.Fatal(err)
	}
	if id.Company != "acme" || id.User != "usr_alice" || len(id.Roles) != 1 || id.Roles[0] != "admin" ||
		id.Scope != "invoices:read invoices:write" || id.Plan != "standard" || id.TokenID != "a-1" ||
		!id.Expiry.Equal(time.Unix(now.Add(time.Minute).Unix(), 0)) {
		t.Fatalf("identity %+v", id)
	}
	if !id.HasScope("invoices:write") || id.HasScope("invoices") || id.HasScope("ledger:read") {
		t.Fatal("HasScope")
	}
}

// TestCachedAssertion: a verified assertion is remembered, but never past
// its exp, never for another audience, and not once its key is withdrawn.
func TestCachedAssertion(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1")
	e.addKey("edge-2", false)
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	v := newVerifier(t, e, func() time.Time { return *clock.Load() }, nil)
	tok := e.assertion(now, nil)
	for range 3 {
		if _, err := v.Verify(t.Context(), tok, "invoices"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Verify(t.Context(), tok, "ledger"); !errors.Is(err, ErrAudience) {
		t.Fatalf("cached, other audience: %v", err)
	}
	// the edge rotates: edge-2 published, edge-1 withdrawn; an assertion
	// by edge-2 makes the verifier fetch, after which edge-1's cached
	// assertion is no longer good
	e.setPublished("edge-2", true)
	e.setPublished("edge-1", false)
	later := now.Add(time.Minute / 2)
	clock.Store(&later)
	tok2 := e.signRaw("edge-2", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-2"}`, mustJSON(claims(later, nil)))
	if _, err := v.Verify(t.Context(), tok2, "invoices"); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("withdrawn key, cached: %v", err)
	}
	expired := now.Add(2 * time.Minute)
	clock.Store(&expired)
	if _, err := v.Verify(t.Context(), tok2, "invoices"); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached, expired: %v", err)
	}
}

// TestUnknownKidFlood: made-up kids cause at most one fetch per MinRefetch;
// a key published since is found on the next allowed fetch.
func TestUnknownKidFlood(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1")
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	v := newVerifier(t, e, func() time.Time { return *clock.Load() }, func(c *Config) { c.MinRefetch = 10 * time.Second })
	if _, err := v.Verify(t.Context(), e.assertion(now, nil), "invoices"); err != nil {
		t.Fatal(err)
	}
	base := e.fetches.Load()
	if base != 1 {
		t.Fatalf("%d fetches for the first assertion, want 1", base)
	}
	// within MinRefetch of that first fetch, no unknown kid fetches
	tok := e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-soon"}`, mustJSON(claims(now, nil)))
	if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) || e.fetches.Load() != base {
		t.Fatalf("unknown kid within MinRefetch: %v, %d fetches", err, e.fetches.Load())
	}
	now = now.Add(11 * time.Second)
	clock.Store(&now)
	claimsJSON := mustJSON(claims(now, nil))
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kid := "edge-random-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
			tok := e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"`+kid+`"}`, claimsJSON)
			if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("kid %s: %v", kid, err)
			}
			// non-edge kids never fetch at all
			tok = e.signRaw("edge-1", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"k`+kid+`"}`, claimsJSON)
			if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("kid k%s: %v", kid, err)
			}
		}()
	}
	wg.Wait()
	if n := e.fetches.Load() - base; n != 1 {
		t.Fatalf("%d fetches for 400 unknown kids, want 1", n)
	}
	// a key published now is found once MinRefetch has passed
	e.addKey("edge-new", true)
	tok = e.signRaw("edge-new", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-new"}`, claimsJSON)
	if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("within MinRefetch: %v", err)
	}
	later := now.Add(11 * time.Second)
	clock.Store(&later)
	if _, err := v.Verify(t.Context(), tok, "invoices"); err != nil {
		t.Fatalf("after MinRefetch: %v", err)
	}
	if n := e.fetches.Load() - base; n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// TestKeysFilter: only EdDSA signing keys with an edge- kid are used.
func TestKeysFilter(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	okp := func(kid string, alg jwa.SignatureAlgorithm, use string) jwk.Key {
		k, err := jwk.Import(priv.Public())
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
	hs, err := jwk.Import([]byte(priv.Public().(ed25519.PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	_ = hs.Set(jwk.KeyIDKey, "edge-hmac")
	_ = hs.Set(jwk.AlgorithmKey, jwa.HS256())
	set := jwk.NewSet()
	for _, k := range []jwk.Key{
		okp("edge-good", jwa.EdDSA(), "sig"),
		okp("edge-no-use", jwa.EdDSA(), ""),
		okp("edge-no-alg", jwa.SignatureAlgorithm{}, ""),
		okp("edge-enc", jwa.EdDSA(), "enc"),
		okp("at-1", jwa.EdDSA(), "sig"),
		hs,
	} {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	m := jwtverify.Select(set, jwtverify.AssertionKeys)
	if len(m) != 2 || m["edge-good"].Public == nil || m["edge-no-use"].Public == nil {
		t.Fatalf("usable keys %v", m)
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1", "at-1")
	now := time.Now()
	var refused []error
	var mu sync.Mutex
	v := newVerifier(t, e, func() time.Time { return now }, func(c *Config) {
		c.Audience = ""
		c.AudienceFor = func(r *http.Request) string {
			name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			if name == "invoices" || name == "ledger" {
				return name
			}
			return ""
		}
		c.OnRefuse = func(_ *http.Request, err error) { mu.Lock(); refused = append(refused, err); mu.Unlock() }
	})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := FromContext(r.Context())
		if !ok {
			t.Error("no identity in the context")
			return
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-erp-") || strings.HasPrefix(strings.ToLower(k), "x_erp_") {
				if !sameName(k, Header) {
					t.Errorf("handler got client header %s", k)
				}
			}
		}
		_, _ = w.Write([]byte(id.Company + " " + id.User))
	}))
	good := e.assertion(now, nil)
	access := e.signRaw("at-1", `{"alg":"EdDSA","typ":"at+jwt","kid":"at-1"}`, mustJSON(claims(now, map[string]any{"aud": "erpgate"})))
	tests := []struct {
		name   string
		path   string
		header [][2]string
		status int
		body   string
	}{
		{"good", "/invoices/1", [][2]string{{"X-ERP-Assertion", good}}, 200, "acme usr_alice"},
		{"good, with identity headers from the client", "/invoices/1", [][2]string{
			{"X-ERP-Assertion", good}, {"X-ERP-Company-ID", "globex"}, {"x-erp-user-id", "root"},
			{"X_ERP_Company_ID", "globex"}, {"X-Erp-Roles", "owner"}, {"X-ERP-SCOPE", "ledger:write"},
		}, 200, "acme usr_alice"},
		{"missing", "/invoices/1", nil, 401, ""},
		{"missing, identity headers only", "/invoices/1", [][2]string{{"X-ERP-Company-ID", "acme"}, {"X-ERP-User-ID", "usr_alice"}}, 401, ""},
		{"access token as assertion", "/invoices/1", [][2]string{{"X-ERP-Assertion", access}}, 401, ""},
		{"other backend", "/ledger/1", [][2]string{{"X-ERP-Assertion", good}}, 401, ""},
		{"no backend for the path", "/elsewhere", [][2]string{{"X-ERP-Assertion", good}}, 401, ""},
		{"duplicate header", "/invoices/1", [][2]string{{"X-ERP-Assertion", good}, {"X-ERP-Assertion", good}}, 401, ""},
		{"duplicate header, other spelling", "/invoices/1", [][2]string{{"X-ERP-Assertion", good}, {"X_ERP_Assertion", good}}, 401, ""},
		{"expired", "/invoices/1", [][2]string{{"X-ERP-Assertion", e.assertion(now.Add(-5*time.Minute), nil)}}, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			for _, kv := range tt.header {
				req.Header[kv[0]] = append(req.Header[kv[0]], kv[1]) // as sent: no canonicalisation
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if rec.Body.String() != tt.body {
					t.Fatalf("body %q, want %q", rec.Body, tt.body)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "ERP-Assertion ") {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["status"] != float64(401) {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if rec.Body.String() != string(unauthorizedBody) {
				t.Errorf("the body says more than the generic refusal: %s", rec.Body)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 8 {
		t.Fatalf("OnRefuse told %d times, want 8: %v", len(refused), refused)
	}
	for _, err := range refused {
		if strings.Contains(err.Error(), good) {
			t.Fatal("a refusal reason holds the assertion")
		}
	}
}

func TestNewRequires(t *testing.T) {
	t.Parallel()
	keys := func(context.Context) (jwk.Set, error) { return jwk.NewSet(), nil }
	for name, cfg := range map[string]Config{
		"no issuer":        {Keys: keys, Audience: "invoices"},
		"no keys":          {Issuer: testIssuer, Audience: "invoices"},
		"JWKS not http(s)": {JWKSURL: "file:///etc/jwks.json", Issuer: testIssuer, Audience: "invoices"},
		"no audience":      {Keys: keys, Issuer: testIssuer},
	} {
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestKeySource: keys from a function (an auth service in the process), and
// a failing source refuses rather than accepts.
func TestKeySource(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1")
	now := time.Now()
	var fail atomic.Bool
	v, err := New(t.Context(), Config{
		Keys: func(context.Context) (jwk.Set, error) {
			if fail.Load() {
				return nil, errors.New("down")
			}
			return e.jwks(), nil
		},
		Issuer: testIssuer, Audience: "invoices", Now: func() time.Time { return now }, CacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), e.assertion(now, nil), "invoices"); err != nil {
		t.Fatal(err)
	}
	if e.fetches.Load() != 0 {
		t.Fatal("the JWKS URL was fetched")
	}
	fail.Store(true)
	// the last good keys stay
	if _, err := v.Verify(t.Context(), e.assertion(now, nil), "invoices"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVerify: one assertion's full check (signature included), and the
// cached path a request takes when the edge re-sends an assertion.
func BenchmarkVerify(b *testing.B) {
	e := newEdge(b, "edge-1")
	now := time.Now()
	tok := e.assertion(now, nil)
	for _, bc := range []struct {
		name  string
		cache int
	}{{"uncached", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVerifier(b, e, func() time.Time { return now }, func(c *Config) { c.CacheSize = bc.cache })
			ctx := b.Context()
			if _, err := v.Verify(ctx, tok, "invoices"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok, "invoices"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMiddleware: the cached path through the middleware.
func BenchmarkMiddleware(b *testing.B) {
	e := newEdge(b, "edge-1")
	now := time.Now()
	v := newVerifier(b, e, func() time.Time { return now }, nil)
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/invoices", nil)
	req.Header.Set(Header, e.assertion(now, nil))
	req.Header.Set("X-Request-ID", "r")
	req.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
	if w.Code != 200 {
		b.Fatal(w.Code)
	}
}

// TestRetryAfterFailedFetch: a key source that failed (a reload, a
// restart) is asked again after a second, not after MinRefetch; still not
// at once.
func TestRetryAfterFailedFetch(t *testing.T) {
	t.Parallel()
	e := newEdge(t, "edge-1")
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	var fail atomic.Bool
	var calls atomic.Int64
	fail.Store(true)
	v, err := New(t.Context(), Config{
		Keys: func(context.Context) (jwk.Set, error) {
			calls.Add(1)
			if fail.Load() {
				return nil, errors.New("not ready")
			}
			return e.jwks(), nil
		},
		Issuer: testIssuer, Audience: "invoices", MinRefetch: time.Minute,
		Now: func() time.Time { return *clock.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.assertion(now, nil)
	if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("source down: %v", err)
	}
	fail.Store(false)
	if _, err := v.Verify(t.Context(), tok, "invoices"); !errors.Is(err, ErrUnknownKey) || calls.Load() != 1 {
		t.Fatalf("at once after a failure: %v, %d calls", err, calls.Load())
	}
	later := now.Add(1100 * time.Millisecond)
	clock.Store(&later)
	if _, err := v.Verify(t.Context(), tok, "invoices"); err != nil || calls.Load() != 2 {
		t.Fatalf("a second after a failure: %v, %d calls", err, calls.Load())
	}
}
