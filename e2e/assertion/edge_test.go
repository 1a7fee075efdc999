// Package assertion drives the edge side of the edge assertion in the
// running binary (DESIGN.md "Edge assertion"): every proxied request carries
// an X-ERP-Assertion that verifies against the edge's JWKS with an
// independent library (golang-jwt), for the backend it goes to and the
// identity the edge verified; a client's copy never reaches a backend; the
// assertion keys are not access-token keys.
package assertion

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals the signing keys (test only): the test unseals them
// from Postgres as an attacker holding it would.
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// edgeCaddyfile: the auth service in process; /api/* routed by erp_version
// to the backend "invoices"; /direct/* a route without erp_version naming
// its backend "ledger"; /plain/* proxied with no backend named.
const edgeCaddyfile = `{
	admin {$ERP_ADMIN}
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
		backend invoices {
			version v1 http://{$ERP_TEST_BACKEND}/v1
		}
	}
}

http://{$ERP_LISTEN} {
	erp_envelope
	handle /api/v1/auth/* {
		erp_authsvc
	}
	handle /.well-known/* {
		erp_authsvc
	}
	handle /direct/* {
		erp_auth {
			backend ledger
		}
		reverse_proxy {$ERP_TEST_BACKEND}
	}
	handle /plain/* {
		erp_auth {
			authenticated_only
		}
		reverse_proxy {$ERP_TEST_BACKEND}
	}
	handle /api/* {
		erp_version
		erp_auth
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`

// remoteCaddyfile: an edge with no auth service of its own, verifying
// tokens against another instance's JWKS.
const remoteCaddyfile = `{
	admin {$ERP_ADMIN}
	erp
}

http://{$ERP_LISTEN} {
	erp_envelope
	handle /api/* {
		erp_auth {
			jwks_url {$ERP_TEST_ISSUER}/.well-known/jwks.json
			issuer erpgate
			audience erpgate-api
			api_keys off
			backend invoices
		}
		reverse_proxy {$ERP_TEST_BACKEND}
	}
	handle_errors {
		erp_envelope
	}
}
`

// backend is a test ERP backend: it records the assertion headers of every
// request, in every spelling, and answers 200.
type backend struct {
	mu   sync.Mutex
	seen [][]string // per request: the values of every X-ERP-Assertion spelling
	srv  *httptest.Server
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var vals []string
		for name, vs := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), "x-erp-assertion") {
				vals = append(vals, vs...)
			}
		}
		b.mu.Lock()
		b.seen = append(b.seen, vals)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[]}`)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) host() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// last is what the backend saw of the last request.
func (b *backend) last(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatal("the backend got no request")
	}
	return b.seen[len(b.seen)-1]
}

// get sends GET with the credential header and a client's own assertions in
// two spellings; it wants 200 and returns the one assertion the backend saw
// ("" for none).
func get(t *testing.T, b *backend, url string, cred map[string]string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range cred {
		req.Header.Set(k, v)
	}
	req.Header["X-Erp-Assertion"] = []string{"client-forged"}
	req.Header["X_ERP_Assertion"] = []string{"client-forged-too"}
	resp, err := httpt.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	seen := b.last(t)
	for _, v := range seen {
		if strings.HasPrefix(v, "client-forged") {
			t.Fatalf("GET %s: the client's X-ERP-Assertion reached the backend: %q", url, seen)
		}
	}
	switch len(seen) {
	case 0:
		return ""
	case 1:
		return seen[0]
	}
	t.Fatalf("GET %s: the backend saw %d assertions: %q", url, len(seen), seen)
	return ""
}

// jwks reads the edge's published keys by hand (no JWT library): the
// assertion keys (kid edge-…) and the others.
func jwks(t *testing.T, base string) (edge, access map[string]ed25519.PublicKey) {
	t.Helper()
	resp := httpt.Get(t, base+"/.well-known/jwks.json", nil)
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(resp.Body, &doc) != nil {
		t.Fatalf("jwks: %d %s", resp.StatusCode, resp.Body)
	}
	edge, access = map[string]ed25519.PublicKey{}, map[string]ed25519.PublicKey{}
	for _, k := range doc.Keys {
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWK %v", k)
		}
		if strings.HasPrefix(k["kid"], "edge-") {
			edge[k["kid"]] = x
		} else {
			access[k["kid"]] = x
		}
	}
	return edge, access
}

// verify checks an assertion with golang-jwt against keys: EdDSA, typ
// erp-edge+jwt, iss erpgate, aud, exp and iat required.
func verify(t *testing.T, tok string, keys map[string]ed25519.PublicKey, aud string) (gjwt.MapClaims, string, error) {
	t.Helper()
	var kid string
	claims := gjwt.MapClaims{}
	_, err := gjwt.ParseWithClaims(tok, claims, func(tk *gjwt.Token) (any, error) {
		if tk.Header["typ"] != "erp-edge+jwt" {
			return nil, fmt.Errorf("typ %v", tk.Header["typ"])
		}
		kid, _ = tk.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q is not a key given", kid)
		}
		return k, nil
	}, gjwt.WithValidMethods([]string{"EdDSA"}), gjwt.WithIssuer("erpgate"), gjwt.WithAudience(aud),
		gjwt.WithExpirationRequired(), gjwt.WithIssuedAt())
	return claims, kid, err
}

// unverifiedClaims decodes a JWT's payload without checking it.
func unverifiedClaims(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	var h, c map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		t.Fatalf("undecodable JWT %q", tok)
	}
	return h, c
}

// unseal reads the newest key of a table and opens it with the master key
// (AES-256-GCM, nonce || ciphertext, the kid as additional data), by hand.
func unseal(t *testing.T, pg, table string) (string, ed25519.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var kid string
	var sealed []byte
	if err := conn.QueryRow(ctx, `SELECT kid, sealed_private FROM `+table+` ORDER BY activates_at DESC LIMIT 1`).Scan(&kid, &sealed); err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	mk, _ := base64.StdEncoding.DecodeString(testMasterKey)
	block, _ := aes.NewCipher(mk)
	aead, _ := cipher.NewGCM(block)
	n := aead.NonceSize()
	seed, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("unseal %s key %s: %v", table, kid, err)
	}
	return kid, ed25519.NewKeyFromSeed(seed)
}

// forge signs claims as an access token (typ at+jwt) with kid's key.
func forge(t *testing.T, kid string, key ed25519.PrivateKey, claims map[string]any) string {
	t.Helper()
	tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, gjwt.MapClaims(claims))
	tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEdgeAssertion(t *testing.T) {
	t.Parallel()
	be := newBackend(t)
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Config: edgeCaddyfile, Env: map[string]string{
		"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_MASTER_KEY": testMasterKey, "ERP_TEST_BACKEND": be.host(),
	}})
	tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	_, access := unverifiedClaims(t, tok.Access)
	accessHdr, _ := unverifiedClaims(t, tok.Access)

	// A proxied request carries an assertion for its backend; the client's
	// own X-ERP-Assertion (in two spellings) is gone.
	a1 := get(t, be, in.URL+"/api/v1/invoices", demoauth.Bearer(tok.Access))
	if a1 == "" {
		t.Fatal("the backend got no X-ERP-Assertion")
	}
	edgeKeys, accessKeys := jwks(t, in.URL)
	if len(edgeKeys) == 0 || len(accessKeys) == 0 {
		t.Fatalf("JWKS: %d assertion keys, %d access-token keys", len(edgeKeys), len(accessKeys))
	}
	if edgeKeys[accessHdr["kid"].(string)] != nil {
		t.Fatal("the access token's kid is an assertion key")
	}
	for kid, pub := range edgeKeys {
		for akid, apub := range accessKeys {
			if pub.Equal(apub) {
				t.Fatalf("assertion key %s is access-token key %s", kid, akid)
			}
		}
	}
	c, kid, err := verify(t, a1, edgeKeys, "invoices")
	if err != nil {
		t.Fatalf("the assertion does not verify against the JWKS's assertion keys: %v", err)
	}
	if kid == accessHdr["kid"] {
		t.Fatal("the assertion is signed by the access-token key")
	}
	exp, iat := c["exp"].(float64), c["iat"].(float64)
	if c["sub"] != access["sub"] || c["cid"] != "acme" || c["scope"] != access["scope"] || c["plan"] != access["plan"] ||
		fmt.Sprint(c["roles"]) != fmt.Sprint(access["roles"]) || c["jti"] == nil || c["jti"] == "" {
		t.Fatalf("assertion claims %v for access token %v", c, access)
	}
	if exp-iat > 60 || exp <= iat || exp > access["exp"].(float64) {
		t.Fatalf("assertion iat %v exp %v (credential exp %v)", iat, exp, access["exp"])
	}
	if _, _, err := verify(t, a1, accessKeys, "invoices"); err == nil {
		t.Fatal("the assertion verifies with an access-token key")
	}

	// Cached per credential and backend: the same token again gets the
	// same assertion; another backend gets its own.
	if a := get(t, be, in.URL+"/api/v1/invoices?page=2", demoauth.Bearer(tok.Access)); a != a1 {
		t.Fatal("the same credential and backend got a new assertion: not cached")
	}
	a2 := get(t, be, in.URL+"/direct/entries", demoauth.Bearer(tok.Access))
	if c2, _, err := verify(t, a2, edgeKeys, "ledger"); err != nil || c2["jti"] == c["jti"] {
		t.Fatalf("route naming its backend: %v (jti %v)", err, c2["jti"])
	}
	if _, _, err := verify(t, a2, edgeKeys, "invoices"); err == nil {
		t.Fatal("the ledger route's assertion is good for invoices")
	}
	// No backend named: no assertion, and still not the client's.
	if a := get(t, be, in.URL+"/plain/x", demoauth.Bearer(tok.Access)); a != "" {
		t.Fatalf("an assertion on a route with no backend: %q", a)
	}

	// An API key's assertion never outlives the key.
	keyExp := time.Now().Add(30 * time.Second).Truncate(time.Second)
	resp := httpt.Do(t, "POST", in.URL+"/api/v1/auth/api-keys", httpt.JSON(t, map[string]any{
		"name": "short", "scope": "invoices:read", "expires_at": keyExp.Format(time.RFC3339),
	}), demoauth.Bearer(tok.Access))
	var key struct {
		Key string `json:"key"`
	}
	if env := resp.Envelope(t); resp.StatusCode != 201 || json.Unmarshal(env.Data, &key) != nil || key.Key == "" {
		t.Fatalf("create API key: %d %s", resp.StatusCode, resp.Body)
	}
	ak := get(t, be, in.URL+"/api/v1/invoices", map[string]string{"X-API-Key": key.Key})
	ck, _, err := verify(t, ak, edgeKeys, "invoices")
	if err != nil || ck["cid"] != "acme" || ck["scope"] != "invoices:read" {
		t.Fatalf("API key assertion: %v %v", err, ck)
	}
	if e := ck["exp"].(float64); e > float64(keyExp.Unix()) {
		t.Fatalf("assertion exp %v after the API key's expiry %d", e, keyExp.Unix())
	}

	// An access token signed by an assertion key is refused, at the edge
	// and at the auth service; the same token signed by the access-token
	// key passes (the forgery itself is sound).
	now := time.Now()
	claims := map[string]any{"iss": "erpgate", "aud": "erpgate-api", "sub": access["sub"], "sid": access["sid"],
		"cid": "acme", "roles": access["roles"], "scope": access["scope"], "plan": access["plan"], "jti": "forged-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	akid, akey := unseal(t, pg, "signing_keys")
	if r := httpt.Get(t, in.URL+"/api/v1/invoices", demoauth.Bearer(forge(t, akid, akey, claims))); r.StatusCode != 200 {
		t.Fatalf("a token signed by the access-token key: %d %s", r.StatusCode, r.Body)
	}
	ekid, ekey := unseal(t, pg, "assertion_keys")
	if !strings.HasPrefix(ekid, "edge-") || edgeKeys[ekid] == nil {
		t.Fatalf("stored assertion key %q is not the published one", ekid)
	}
	forged := forge(t, ekid, ekey, claims)
	for _, path := range []string{"/api/v1/invoices", "/direct/entries", "/api/v1/auth/me"} {
		if r := httpt.Get(t, in.URL+path, demoauth.Bearer(forged)); r.StatusCode != 401 {
			t.Fatalf("%s: an access token signed by the assertion key: %d %s", path, r.StatusCode, r.Body)
		}
	}
	// Nor is an assertion a bearer token.
	if r := httpt.Get(t, in.URL+"/api/v1/invoices", demoauth.Bearer(a1)); r.StatusCode != 401 {
		t.Fatalf("an assertion as a bearer token: %d %s", r.StatusCode, r.Body)
	}

	// gateway erp keys rotate --assertion publishes a new assertion key.
	cmd := exec.Command(stacktest.Binary(t), "erp", "keys", "rotate", "--assertion", "--activate-in", "10m")
	cmd.Env = append(cmd.Environ(), "ERP_POSTGRES_URL="+pg, "ERP_MASTER_KEY="+testMasterKey)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "published assertion key edge-") || strings.Contains(string(out), testMasterKey) {
		t.Fatalf("keys rotate --assertion: %v %s", err, out)
	}
	if newKid, _ := unseal(t, pg, "assertion_keys"); newKid == ekid || !strings.Contains(string(out), newKid) {
		t.Fatalf("rotated assertion key %s (before %s): %s", newKid, ekid, out)
	}

	// An edge with no auth service in process sends no assertion (and
	// still never the client's), and says so once in its log.
	remote := stacktest.Start(t, stacktest.Options{Config: remoteCaddyfile, Env: map[string]string{
		"ERP_TEST_ISSUER": in.URL, "ERP_TEST_BACKEND": be.host(),
	}})
	if a := get(t, be, remote.URL+"/api/v1/invoices", demoauth.Bearer(tok.Access)); a != "" {
		t.Fatalf("a remote edge sent an assertion: %q", a)
	}
	get(t, be, remote.URL+"/api/v1/invoices", demoauth.Bearer(tok.Access))
	if n := strings.Count(remote.Logs(), "no auth service in this process to sign edge assertions"); n != 1 {
		t.Fatalf("the remote edge logged its missing signer %d times:\n%s", n, remote.Logs())
	}
}
