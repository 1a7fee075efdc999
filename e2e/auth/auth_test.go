// Package auth drives the auth service through the running gateway binary:
// embedded defaults, and Postgres + Redis.
package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const caddyfile = `{
	admin {$ERP_ADMIN}
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX:erpgate:}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
			introspection_secret {env.ERP_INTROSPECTION_SECRET}
			key_reload 1s
		}
	}
}
http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /api/v1/auth/* {
			erp_authsvc
		}
		handle /api/v1/admin/* {
			erp_authsvc
		}
		handle /.well-known/* {
			erp_authsvc
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}
`

const edgeSecret = "e2e-edge-introspection-secret"

type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (a answer) data() map[string]any { d, _ := a.Body["data"].(map[string]any); return d }
func (a answer) str(k string) string  { s, _ := a.data()[k].(string); return s }
func (a answer) code() string {
	errs, _ := a.Body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	m, _ := errs[0].(map[string]any)
	c, _ := m["code"].(string)
	return c
}

type client struct {
	t    *testing.T
	base string
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

func (c client) do(method, path, bearer string, body any) answer {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rid := uuid.NewString()
	req.Header.Set("X-Request-ID", rid)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		c.t.Fatalf("%s %s: not JSON: %d %q", method, path, resp.StatusCode, raw)
	}
	// every answer is exactly one envelope with the client's request id
	meta, _ := a.Body["meta"].(map[string]any)
	ok, isBool := a.Body["success"].(bool)
	if !isBool || meta == nil || meta["request_id"] != rid || resp.Header.Get("X-Request-ID") != rid || ok != (a.Status < 400) {
		c.t.Fatalf("%s %s: not a proper envelope (request id %s): %d %s", method, path, rid, a.Status, raw)
	}
	if _, nested := a.data()["success"]; nested {
		c.t.Fatalf("%s %s: envelope wrapped twice: %s", method, path, raw)
	}
	if a.Status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		c.t.Fatalf("%s %s: 401 without WWW-Authenticate", method, path)
	}
	return a
}

func (c client) session(email, company string) answer {
	c.t.Helper()
	l := c.do("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": "erpgate-demo"})
	if l.Status != 200 {
		c.t.Fatalf("login %s: %d %s", email, l.Status, l.Raw)
	}
	s := c.do("POST", "/api/v1/auth/select-company", "", map[string]any{"login_token": l.str("login_token"), "company_id": company})
	if s.Status != 200 {
		c.t.Fatalf("select %s: %d %s", company, s.Status, s.Raw)
	}
	return s
}

// verify checks an access token with golang-jwt against the JWKS published
// over HTTP (decoded by hand) and returns its claims and kid.
func (c client) verify(tok string) (jwt.MapClaims, string) {
	c.t.Helper()
	keys := c.jwks()
	var kid string
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != "at+jwt" {
			return nil, fmt.Errorf("typ %v", t.Header["typ"])
		}
		kid, _ = t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q not in JWKS", kid)
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer("erpgate"), jwt.WithAudience("erpgate-api"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		c.t.Fatalf("independent verification: %v", err)
	}
	return claims, kid
}

func (c client) jwks() map[string]ed25519.PublicKey {
	c.t.Helper()
	resp, err := http.Get(c.base + "/.well-known/jwks.json")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		c.t.Fatalf("jwks: %d %v", resp.StatusCode, err)
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range doc.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] == "" {
			c.t.Fatalf("JWK without kty/crv/alg/use/kid: %v", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			c.t.Fatalf("bad JWK x: %v", k)
		}
		out[k["kid"]] = x
	}
	return out
}

// flow is the whole user journey; it is the same on every backend.
func flow(t *testing.T, c client) {
	// discovery
	oc := c.do("GET", "/.well-known/openid-configuration", "", nil)
	if oc.Status != 200 || oc.Body["issuer"] != "erpgate" || !strings.HasSuffix(fmt.Sprint(oc.Body["jwks_uri"]), "/.well-known/jwks.json") {
		t.Fatalf("openid-configuration: %s", oc.Raw)
	}
	// unknown user and wrong password are indistinguishable
	wrong := c.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "alice@acme.test", "password": "nope-nope"})
	unknown := c.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "mallory@acme.test", "password": "nope-nope"})
	if wrong.Status != 401 || unknown.Status != 401 || fmt.Sprint(wrong.Body["errors"]) != fmt.Sprint(unknown.Body["errors"]) {
		t.Fatalf("distinguishable: %s / %s", wrong.Raw, unknown.Raw)
	}

	sel := c.session("alice@acme.test", "acme")
	claims, _ := c.verify(sel.str("access_token"))
	if claims["cid"] != "acme" || claims["plan"] != "standard" || claims["sid"] != sel.str("session_id") {
		t.Fatalf("claims %v", claims)
	}
	r1 := c.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": sel.str("refresh_token")})
	if r1.Status != 200 {
		t.Fatalf("refresh: %s", r1.Raw)
	}
	c.verify(r1.str("access_token"))
	if a := c.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": sel.str("refresh_token")}); a.Status != 401 || a.code() != "TOKEN_REVOKED" {
		t.Fatalf("reuse: %s", a.Raw)
	}
	if a := c.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": r1.str("refresh_token")}); a.Status != 401 {
		t.Fatalf("family survived reuse: %s", a.Raw)
	}

	s1 := c.session("alice@acme.test", "acme")
	sw := c.do("POST", "/api/v1/auth/switch-company", s1.str("access_token"), map[string]any{"company_id": "globex"})
	if sw.Status != 200 {
		t.Fatalf("switch: %s", sw.Raw)
	}
	claims, _ = c.verify(sw.str("access_token"))
	if claims["cid"] != "globex" || claims["plan"] != "free" || fmt.Sprint(claims["roles"]) != "[viewer]" {
		t.Fatalf("switched claims %v", claims)
	}
	bob := c.session("bob@globex.test", "globex")
	if a := c.do("POST", "/api/v1/auth/switch-company", bob.str("access_token"), map[string]any{"company_id": "acme"}); a.Status != 403 {
		t.Fatalf("bob into acme: %s", a.Raw)
	}
	me := c.do("GET", "/api/v1/auth/me", sw.str("access_token"), nil)
	if me.Status != 200 || me.Body["meta"].(map[string]any)["company_id"] != "globex" {
		t.Fatalf("me: %s", me.Raw)
	}
	ls := c.do("GET", "/api/v1/auth/sessions", sw.str("access_token"), nil)
	list, _ := ls.Body["data"].([]any)
	if ls.Status != 200 || len(list) != 1 || list[0].(map[string]any)["device"] != "Safari on macOS" {
		t.Fatalf("sessions: %s", ls.Raw)
	}
	if a := c.do("DELETE", "/api/v1/auth/sessions/"+bob.str("session_id"), sw.str("access_token"), nil); a.Status != 404 {
		t.Fatalf("revoked bob's session: %s", a.Raw)
	}

	// API keys and introspection
	admin := c.session("alice@acme.test", "acme")
	k := c.do("POST", "/api/v1/auth/api-keys", admin.str("access_token"), map[string]any{"name": "e2e", "scope": "invoices:read"})
	if k.Status != 201 {
		t.Fatalf("create key: %s", k.Raw)
	}
	in := c.do("POST", "/api/v1/auth/introspect", edgeSecret, map[string]any{"token": k.str("key")})
	if in.data()["active"] != true || in.str("company_id") != "acme" || in.str("scope") != "invoices:read" {
		t.Fatalf("introspect: %s", in.Raw)
	}
	if a := c.do("POST", "/api/v1/auth/introspect", admin.str("access_token"), map[string]any{"token": k.str("key")}); a.Status != 401 {
		t.Fatalf("introspection answered a user: %s", a.Raw)
	}

	// logout all: every session's refresh token is dead
	s2 := c.session("alice@acme.test", "acme")
	if a := c.do("POST", "/api/v1/auth/logout", s2.str("access_token"), map[string]any{"all": true}); a.Status != 200 {
		t.Fatalf("logout all: %s", a.Raw)
	}
	for _, s := range []answer{sw, admin, s2} {
		if a := c.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": s.str("refresh_token")}); a.Status != 401 {
			t.Fatalf("refresh after logout all: %s", a.Raw)
		}
	}
	if a := c.do("POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": bob.str("refresh_token")}); a.Status != 200 {
		t.Fatalf("bob lost his session: %s", a.Raw)
	}
	// not served paths: envelope 404 from the edge
	if a := c.do("GET", "/api/v1/admin/nothing", "", nil); a.Status != 404 || a.code() != "NOT_FOUND" {
		t.Fatalf("admin path: %s", a.Raw)
	}
	if a := c.do("GET", "/.well-known/nothing", "", nil); a.Status != 404 {
		t.Fatalf("unknown well-known: %s", a.Raw)
	}
}

func masterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func TestEmbeddedDefaults(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: map[string]string{
		"ERP_POSTGRES_URL": "", "ERP_REDIS_URL": "", "ERP_MASTER_KEY": "", "ERP_INTROSPECTION_SECRET": edgeSecret,
	}})
	flow(t, client{t: t, base: in.URL})
	logs := in.Logs()
	for _, want := range []string{"demo mode", "ephemeral"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q", want)
		}
	}
	if strings.Contains(logs, "erpgate-demo") || strings.Contains(logs, edgeSecret) {
		t.Error("a secret is in the log")
	}
}

func TestPostgresRedis(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	rdb, prefix := testenv.RedisClient(t)
	mk := masterKey()
	env := map[string]string{"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": testenv.RedisURL(), "ERP_KEY_PREFIX": prefix,
		"ERP_MASTER_KEY": mk, "ERP_INTROSPECTION_SECRET": edgeSecret}
	in := stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: env})
	c := client{t: t, base: in.URL}

	// every instance hears revocations on Redis
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := rdb.Subscribe(ctx, prefix+"revocations")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	flow(t, c)
	got := map[string]bool{}
	for len(got) < 3 { // reuse (1 family) + logout all (3 sessions) at least
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("revocations on Redis: %v (got %d)", err, len(got))
		}
		got[m.Payload] = true
	}

	// key rotation with the CLI against the same database
	before := c.session("bob@globex.test", "globex")
	_, oldKid := c.verify(before.str("access_token"))
	cmd := exec.Command(stacktest.Binary(t), "erp", "keys", "rotate", "--activate-in", "0s")
	cmd.Env = append(cmd.Environ(), "ERP_POSTGRES_URL="+pg, "ERP_MASTER_KEY="+mk)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	newKid := ""
	if f := strings.Fields(string(out)); len(f) > 3 {
		newKid = strings.TrimSuffix(f[3], ";")
	}
	if strings.Contains(string(out), mk) {
		t.Fatal("rotate printed the master key")
	}
	deadline := time.Now().Add(20 * time.Second)
	var after answer
	for {
		after = c.session("bob@globex.test", "globex")
		if _, kid := c.verify(after.str("access_token")); kid == newKid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new tokens are not signed by the rotated key %s (out: %s)", newKid, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	keys := c.jwks()
	if keys[oldKid] == nil || keys[newKid] == nil {
		t.Fatalf("JWKS after rotation lacks old or new key: %v", slices.Collect(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		}))
	}
	c.verify(before.str("access_token")) // earlier tokens still valid
	if a := c.do("GET", "/api/v1/auth/me", before.str("access_token"), nil); a.Status != 200 {
		t.Fatalf("earlier token refused after rotation: %s", a.Raw)
	}

	// migrate is idempotent against the running database
	mig := exec.Command(stacktest.Binary(t), "erp", "migrate", "--postgres", pg)
	if out, err := mig.CombinedOutput(); err != nil || !strings.Contains(string(out), "up to date") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	if strings.Contains(in.Logs(), mk) {
		t.Fatal("master key in the log")
	}
}
