package edgeauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// issuerStub is a test-controlled issuer: its JWKS is written by hand (no
// JWT library), its tokens are signed with golang-jwt.
type issuerStub struct {
	mu      sync.Mutex
	keys    map[string]any // kid -> private key (ed25519.PrivateKey or *ecdsa.PrivateKey)
	fetches atomic.Int64
	srv     *httptest.Server
}

func newIssuer(t *testing.T) *issuerStub {
	t.Helper()
	is := &issuerStub{keys: map[string]any{}}
	is.addEd25519("ed-1")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.keys["ec-1"] = ec
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(is.jwks())
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuerStub) addEd25519(kid string) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	is.mu.Lock()
	is.keys[kid] = priv
	is.mu.Unlock()
}

func (is *issuerStub) remove(kid string) {
	is.mu.Lock()
	delete(is.keys, kid)
	is.mu.Unlock()
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func pad32(n *big.Int) []byte {
	b := n.Bytes()
	return append(make([]byte, 32-len(b)), b...)
}

func (is *issuerStub) jwks() []byte {
	is.mu.Lock()
	defer is.mu.Unlock()
	var keys []map[string]string
	for kid, k := range is.keys {
		switch k := k.(type) {
		case ed25519.PrivateKey:
			keys = append(keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64u(k.Public().(ed25519.PublicKey)), "kid": kid, "alg": "EdDSA", "use": "sig"})
		case *ecdsa.PrivateKey:
			keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "x": b64u(pad32(k.X)), "y": b64u(pad32(k.Y)), "kid": kid, "alg": "ES256", "use": "sig"})
		}
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

const stubIssuer, stubAudience = "https://issuer.test", "erpgate-test"

func claims(mut map[string]any) gjwt.MapClaims {
	now := time.Now()
	c := gjwt.MapClaims{
		"iss": stubIssuer, "aud": stubAudience, "sub": "usr_test", "sid": "ses_test", "cid": "acme",
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "jti": fmt.Sprint(now.UnixNano()),
		"roles": []string{"accountant"}, "scope": "invoices:read", "plan": "standard",
	}
	for k, v := range mut {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs with the key of kid (or signKid when set), with header changes.
func (is *issuerStub) sign(t *testing.T, kid string, c gjwt.MapClaims, hdr map[string]any) string {
	t.Helper()
	is.mu.Lock()
	k := is.keys[kid]
	is.mu.Unlock()
	var m gjwt.SigningMethod = gjwt.SigningMethodEdDSA
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		m = gjwt.SigningMethodES256
	}
	tok := gjwt.NewWithClaims(m, c)
	tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
	for hk, hv := range hdr {
		if hv == nil {
			delete(tok.Header, hk)
		} else {
			tok.Header[hk] = hv
		}
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stubConfig(jwksURL, refresh string) string {
	return `{
	admin {$ERP_ADMIN}
}
http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle_path /api/* {
			erp_auth {
				jwks_url ` + jwksURL + `
				issuer ` + stubIssuer + `
				audience ` + stubAudience + `
				refresh_interval ` + refresh + `
				min_refetch 5s
				api_keys off
				require invoices:read
			}
			reverse_proxy {$ERP_DEMO_LISTEN} {
				header_up Host {upstream_hostport}
			}
		}
	}
	handle_errors {
		erp_envelope
	}
}
# the edge's token checks alone: no backend is named, so no assertion
http://{$ERP_DEMO_LISTEN} {
	erp_demo {
		insecure_skip_assertion
	}
}
`
}

func newStubInstance(t *testing.T, is *issuerStub) *stacktest.Instance {
	t.Helper()
	return stacktest.Start(t, stacktest.Options{Config: stubConfig(is.srv.URL, "1m")})
}

// TestForgedTokens: SECURITY.md category 1, against the running binary.
func TestForgedTokens(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	in := stacktest.Start(t, stacktest.Options{Config: stubConfig(is.srv.URL, "1m")})
	u := in.URL + "/api/v1/invoices?limit=2"
	call := func(tok string) *httpt.Response { return httpt.Get(t, u, bearer(tok)) }

	good := is.sign(t, "ed-1", claims(nil), nil)
	env := expectOK(t, call(good))
	if env.Meta.CompanyID != "acme" || env.Meta.UserID != "usr_test" {
		t.Fatalf("meta %+v", env.Meta)
	}
	expectOK(t, call(is.sign(t, "ec-1", claims(nil), nil)))

	parts := strings.Split(good, ".")
	edPriv := is.keys["ed-1"].(ed25519.PrivateKey)
	handSigned := func(header, payload string) string {
		in := b64u([]byte(header)) + "." + b64u([]byte(payload))
		return in + "." + b64u(ed25519.Sign(edPriv, []byte(in)))
	}
	exp := time.Now().Add(5 * time.Minute).Unix()
	hs256 := func() string { // key confusion: the Ed25519 public key as an HMAC secret
		tok := gjwt.NewWithClaims(gjwt.SigningMethodHS256, claims(nil))
		tok.Header["kid"], tok.Header["typ"] = "ed-1", "at+jwt"
		s, _ := tok.SignedString([]byte(edPriv.Public().(ed25519.PublicKey)))
		return s
	}()
	otherKey := func() string {
		_, p, _ := ed25519.GenerateKey(rand.Reader)
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, claims(nil))
		tok.Header["kid"], tok.Header["typ"] = "ed-1", "at+jwt"
		s, _ := tok.SignedString(p)
		return s
	}()
	algSwap := func() string { // an ES256 signature presented under the Ed25519 key's kid
		tok := gjwt.NewWithClaims(gjwt.SigningMethodES256, claims(nil))
		tok.Header["kid"], tok.Header["typ"] = "ed-1", "at+jwt"
		s, _ := tok.SignedString(is.keys["ec-1"])
		return s
	}()
	cases := []struct {
		name, token, code string
	}{
		{"alg none", b64u([]byte(`{"alg":"none","typ":"at+jwt","kid":"ed-1"}`)) + "." + parts[1] + ".", "UNAUTHENTICATED"},
		{"key confusion HS256", hs256, "UNAUTHENTICATED"},
		{"alg swapped", algSwap, "UNAUTHENTICATED"},
		{"signed by another key", otherKey, "UNAUTHENTICATED"},
		{"unknown kid", is.sign(t, "ed-1", claims(nil), map[string]any{"kid": "no-such-key"}), "UNAUTHENTICATED"},
		{"hostile kid", is.sign(t, "ed-1", claims(nil), map[string]any{"kid": "../../../etc/passwd' OR 1=1 --"}), "UNAUTHENTICATED"},
		{"huge kid", is.sign(t, "ed-1", claims(nil), map[string]any{"kid": strings.Repeat("k", 5000)}), "UNAUTHENTICATED"},
		{"foreign issuer", is.sign(t, "ed-1", claims(map[string]any{"iss": "https://evil.test"}), nil), "UNAUTHENTICATED"},
		{"foreign audience", is.sign(t, "ed-1", claims(map[string]any{"aud": "someone-else"}), nil), "UNAUTHENTICATED"},
		{"expired", is.sign(t, "ed-1", claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), nil), "TOKEN_EXPIRED"},
		{"no exp", is.sign(t, "ed-1", claims(map[string]any{"exp": nil}), nil), "UNAUTHENTICATED"},
		{"not yet valid", is.sign(t, "ed-1", claims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), nil), "UNAUTHENTICATED"},
		{"typ JWT", is.sign(t, "ed-1", claims(nil), map[string]any{"typ": "JWT"}), "UNAUTHENTICATED"},
		{"no typ", is.sign(t, "ed-1", claims(nil), map[string]any{"typ": nil}), "UNAUTHENTICATED"},
		{"crit", is.sign(t, "ed-1", claims(nil), map[string]any{"crit": []string{"exp"}}), "UNAUTHENTICATED"},
		{"jku", is.sign(t, "ed-1", claims(nil), map[string]any{"jku": "http://127.0.0.1:1/jwks"}), "UNAUTHENTICATED"},
		{"x5u", is.sign(t, "ed-1", claims(nil), map[string]any{"x5u": "http://127.0.0.1:1/cert"}), "UNAUTHENTICATED"},
		{"embedded jwk", is.sign(t, "ed-1", claims(nil), map[string]any{"jwk": map[string]string{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}}), "UNAUTHENTICATED"},
		{"x5c", is.sign(t, "ed-1", claims(nil), map[string]any{"x5c": []string{"MIIB"}}), "UNAUTHENTICATED"},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "=", "UNAUTHENTICATED"},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], "UNAUTHENTICATED"},
		{"two parts", parts[0] + "." + parts[1], "UNAUTHENTICATED"},
		{"garbage", "%%%.***.!!!", "UNAUTHENTICATED"},
		{"huge token", is.sign(t, "ed-1", claims(map[string]any{"pad": strings.Repeat("x", 7000)}), nil), "UNAUTHENTICATED"},
		{"deeply nested", is.sign(t, "ed-1", claims(map[string]any{"n": json.RawMessage(strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000))}), nil), "UNAUTHENTICATED"},
		{"duplicate claims", handSigned(`{"alg":"EdDSA","typ":"at+jwt","kid":"ed-1"}`,
			fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"u","sid":"s","cid":"globex","exp":%d,"scope":"invoices:read","cid":"acme"}`, stubIssuer, stubAudience, exp)), "UNAUTHENTICATED"},
		{"no company", is.sign(t, "ed-1", claims(map[string]any{"cid": nil}), nil), "UNAUTHENTICATED"},
		{"missing scope", is.sign(t, "ed-1", claims(map[string]any{"scope": "customers:read"}), nil), "FORBIDDEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status := 401
			if tc.code == "FORBIDDEN" {
				status = 403
			}
			expectCode(t, call(tc.token), status, tc.code)
		})
	}
	if strings.Contains(in.Logs(), parts[2]) || strings.Contains(in.Logs(), good) {
		t.Fatal("a token reached the logs")
	}
}

// TestKeyRotation: SECURITY.md category 2.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	in := stacktest.Start(t, stacktest.Options{Config: stubConfig(is.srv.URL, "1s")})
	u := in.URL + "/api/v1/invoices?limit=1"
	old := is.sign(t, "ed-1", claims(nil), nil)
	expectOK(t, httpt.Get(t, u, bearer(old)))

	// a key published a second ago verifies at once (one refetch)
	is.addEd25519("ed-2")
	expectOK(t, httpt.Get(t, u, bearer(is.sign(t, "ed-2", claims(nil), nil))))
	expectOK(t, httpt.Get(t, u, bearer(old)))

	// a retired key stops verifying once the set is refreshed (1s here)
	is.remove("ed-1")
	took := eventually(t, 10*time.Second, func() bool {
		return httpt.Get(t, u, bearer(old)).StatusCode == 401
	})
	t.Logf("retired key refused %s after removal", took.Round(time.Millisecond))
	expectCode(t, httpt.Get(t, u, bearer(old)), 401, "UNAUTHENTICATED")
	expectOK(t, httpt.Get(t, u, bearer(is.sign(t, "ed-2", claims(nil), nil))))
}

// TestUnknownKidFlood: a flood of random kids is not a flood of JWKS fetches.
func TestUnknownKidFlood(t *testing.T) {
	t.Parallel()
	is := newIssuer(t)
	in := stacktest.Start(t, stacktest.Options{Config: stubConfig(is.srv.URL, "10m")})
	u := in.URL + "/api/v1/invoices?limit=1"
	expectOK(t, httpt.Get(t, u, bearer(is.sign(t, "ed-1", claims(nil), nil))))
	// the flood's fetches, not the start-up's: wait until the key set's
	// first fetches (registration, the first look-up) have settled
	before := is.fetches.Load()
	for settled := time.Now().Add(3 * time.Second); time.Now().Before(settled); {
		time.Sleep(300 * time.Millisecond)
		if n := is.fetches.Load(); n != before {
			before = n
			continue
		}
		break
	}
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 25 {
				tok := is.sign(t, "ed-1", claims(nil), map[string]any{"kid": fmt.Sprintf("random-%d-%d", i, j)})
				if httpt.Get(t, u, bearer(tok)).StatusCode == 401 {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fetched := is.fetches.Load() - before
	if refused.Load() != 400 {
		t.Fatalf("%d of 400 random-kid tokens refused", refused.Load())
	}
	if fetched > 1 {
		t.Fatalf("400 random kids caused %d JWKS fetches", fetched)
	}
	t.Logf("400 random kids: %d JWKS fetches", fetched)
}
