// Package strictjwt drives the running binary with tokens that are validly
// signed but whose JSON is ambiguous — case-variant or duplicate members,
// invalid UTF-8, members of the wrong type (SECURITY.md, "Ambiguity": one
// parse, one answer, everywhere). The edge (erp_jwt) and the auth service
// must refuse each with 401 in the envelope.
//
// Tokens are written by hand and signed with crypto/ed25519 (golang-jwt for
// the ones a JSON encoder can write), not by the code under test. At the
// edge they are signed by a test issuer whose JWKS the test serves; at the
// auth service by the service's own signing key, unsealed from the test's
// own database with the master key the test gave the binary.
package strictjwt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// handSigned signs a header and a payload written by hand: no JSON encoder
// writes duplicates, case variants or invalid UTF-8.
func handSigned(priv ed25519.PrivateKey, header, payload string) string {
	in := b64u([]byte(header)) + "." + b64u([]byte(payload))
	return in + "." + b64u(ed25519.Sign(priv, []byte(in)))
}

// ambiguous are the cases both verifiers must refuse: a header and a claims
// set made from good ones (hdr and claims, JSON objects written by hand).
type ambiguous struct {
	name            string
	header, payload string
}

// cases derives the ambiguous tokens from a good header and claims set,
// both single-line JSON objects whose last member is not `sub`.
func cases(hdr, claims string, kid string) []ambiguous {
	body := strings.TrimSuffix(claims, "}") // the members, to add after
	var m map[string]any
	_ = json.Unmarshal([]byte(claims), &m)
	exp, _ := m["exp"].(float64)
	return []ambiguous{
		{"cid and CID", hdr, body + `,"CID":"globex"}`},
		{"CID before cid", hdr, `{"CID":"globex",` + claims[1:]},
		{"duplicate sub", hdr, body + `,"sub":"someone-else"}`},
		{"escaped duplicate cid", hdr, body + `,"c\u0069d":"globex"}`},
		{"cid a number", hdr, strings.Replace(claims, `"cid":"acme"`, `"cid":123`, 1)},
		{"invalid UTF-8 in a claim", hdr, strings.Replace(claims, `"cid":"acme"`, "\"cid\":\"ac\xffme\"", 1)},
		{"lone surrogate in a claim", hdr, body + `,"note":"\ud800"}`},
		{"Exp instead of exp", hdr, strings.Replace(claims, fmt.Sprintf(`"exp":%d`, int64(exp)), fmt.Sprintf(`"Exp":%d`, int64(exp)), 1)},
		{"ALG beside alg", `{"alg":"EdDSA","kid":"` + kid + `","typ":"at+jwt","ALG":"EdDSA"}`, claims},
		{"Typ instead of typ", `{"alg":"EdDSA","kid":"` + kid + `","Typ":"at+jwt"}`, claims},
		{"KID instead of kid", `{"alg":"EdDSA","KID":"` + kid + `","typ":"at+jwt"}`, claims},
		{"alg twice", `{"alg":"EdDSA","kid":"` + kid + `","typ":"at+jwt","alg":"EdDSA"}`, claims},
		{"invalid UTF-8 in the header", "{\"alg\":\"EdDSA\",\"kid\":\"" + kid + "\",\"typ\":\"at+jwt\",\"x\":\"\xff\"}", claims},
	}
}

// expect401 asserts the envelope's 401: the code, a Bearer challenge.
func expect401(t *testing.T, resp *httpt.Response, code string) {
	t.Helper()
	env := resp.Envelope(t)
	if resp.StatusCode != http.StatusUnauthorized || env.Success || env.Code() != code {
		t.Fatalf("%s %s: got %d %s, want 401 %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, resp.Body, code)
	}
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
}

func expectOK(t *testing.T, resp *httpt.Response) *httpt.Envelope {
	t.Helper()
	env := resp.Envelope(t)
	if resp.StatusCode != http.StatusOK || !env.Success {
		t.Fatalf("%s %s: got %d %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, resp.Body)
	}
	return env
}

const stubIssuer, stubAudience = "https://issuer.test", "erpgate-test"

// edgeConfig: erp_auth against the test's JWKS, in front of the demo ERP.
func edgeConfig(jwksURL string) string {
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
# no auth service in this process, so no edge assertion: the demo trusts
# the edge's headers (this test is about the edge's token parsing)
http://{$ERP_DEMO_LISTEN} {
	erp_demo {
		insecure_skip_assertion
	}
}
`
}

// TestEdgeRefusesAmbiguousTokens: erp_jwt against a test issuer.
func TestEdgeRefusesAmbiguousTokens(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	const kid = "strict-1"
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "OKP", "crv": "Ed25519", "x": b64u(pub), "kid": kid, "alg": "EdDSA", "use": "sig"}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	in := stacktest.Start(t, stacktest.Options{Config: edgeConfig(srv.URL)})
	u := in.URL + "/api/v1/invoices?limit=1"

	now := time.Now()
	hdr := `{"alg":"EdDSA","kid":"` + kid + `","typ":"at+jwt"}`
	claims := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"usr_test","sid":"ses_test","cid":"acme","exp":%d,"iat":%d,"nbf":%d,"jti":"j1","roles":["accountant"],"scope":"invoices:read","plan":"standard"}`,
		stubIssuer, stubAudience, now.Add(10*time.Minute).Unix(), now.Unix(), now.Unix())
	// The hand-written token itself is good: what follows fails for its JSON alone.
	env := expectOK(t, httpt.Get(t, u, demoauth.Bearer(handSigned(priv, hdr, claims))))
	if env.Meta.CompanyID != "acme" {
		t.Fatalf("meta %+v", env.Meta)
	}
	// And one by golang-jwt, the independent library.
	signed := func(c gjwt.MapClaims, h map[string]any) string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, c)
		tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
		for k, v := range h {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mapClaims := func() gjwt.MapClaims {
		var m gjwt.MapClaims
		if err := json.Unmarshal([]byte(claims), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	expectOK(t, httpt.Get(t, u, demoauth.Bearer(signed(mapClaims(), nil))))

	tokens := map[string]string{}
	for _, c := range cases(hdr, claims, kid) {
		tokens[c.name] = handSigned(priv, c.header, c.payload)
	}
	withCID := mapClaims()
	withCID["cid"] = 123
	tokens["cid a number (golang-jwt)"] = signed(withCID, nil)
	withExp := mapClaims()
	withExp["Exp"] = withExp["exp"]
	delete(withExp, "exp")
	tokens["Exp instead of exp (golang-jwt)"] = signed(withExp, nil)
	tokens["Typ beside no typ (golang-jwt)"] = signed(mapClaims(), map[string]any{"Typ": "at+jwt", "typ": nil})
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			expect401(t, httpt.Get(t, u, demoauth.Bearer(tok)), "UNAUTHENTICATED")
		})
	}
}

// testMasterKey seals the binary's signing keys; the test unseals them.
const testMasterKey = "c3RyaWN0LWp3dC10ZXN0LW1hc3Rlci1rZXktMzJieXQ="

// TestAuthServiceRefusesAmbiguousTokens: the auth service (GET /me) and the
// edge in front of the demo ERP, both on Caddyfile.example, with tokens
// signed by the service's own key.
func TestAuthServiceRefusesAmbiguousTokens(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_MASTER_KEY": testMasterKey, "ERP_INTROSPECTION_SECRET": "strict-introspection-secret",
	}})
	access := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	me := in.URL + "/api/v1/auth/me"
	invoices := in.URL + "/api/v1/invoices?limit=1"
	expectOK(t, httpt.Get(t, me, demoauth.Bearer(access)))

	parts := strings.Split(access, ".")
	rawHdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(rawHdr, &h); err != nil || h.Kid == "" {
		t.Fatalf("header %s: %v", rawHdr, err)
	}
	priv := unsealSigningKey(t, pg, h.Kid)
	rawClaims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := string(rawClaims) // the service's own claims: one line, cid "acme"
	if !strings.Contains(claims, `"cid":"acme"`) {
		t.Fatalf("claims %s", claims)
	}
	hdr := `{"alg":"EdDSA","kid":"` + h.Kid + `","typ":"at+jwt"}`
	// Re-signed by the test, the same header and claims are good, at the
	// service and at the edge: the key is the service's.
	good := handSigned(priv, hdr, claims)
	expectOK(t, httpt.Get(t, me, demoauth.Bearer(good)))
	expectOK(t, httpt.Get(t, invoices, demoauth.Bearer(good)))
	// A header the service did not write byte for byte is read member by member.
	expectOK(t, httpt.Get(t, me, demoauth.Bearer(handSigned(priv, `{"typ":"at+jwt","alg":"EdDSA","kid":"`+h.Kid+`"}`, claims))))

	for _, c := range cases(hdr, claims, h.Kid) {
		tok := handSigned(priv, c.header, c.payload)
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			expect401(t, httpt.Get(t, me, demoauth.Bearer(tok)), "UNAUTHENTICATED")
			expect401(t, httpt.Get(t, invoices, demoauth.Bearer(tok)), "UNAUTHENTICATED")
		})
	}
}

// unsealSigningKey reads the sealed signing key kid from the test's own
// database and opens it with the master key the binary was given.
func unsealSigningKey(t *testing.T, pg, kid string) ed25519.PrivateKey {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var sealed []byte
	if err := conn.QueryRow(ctx, `SELECT sealed_private FROM signing_keys WHERE kid = $1`, kid).Scan(&sealed); err != nil {
		t.Fatalf("signing key %s: %v", kid, err)
	}
	mk, err := authsvc.ParseMasterKey(testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := authsvc.NewSealer(mk)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := sealer.Open(kid, sealed)
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("unseal %s: %v", kid, err)
	}
	return ed25519.NewKeyFromSeed(seed)
}
