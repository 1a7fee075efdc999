// Package assertion drives the edge assertion from the backend's side
// against the running binary: the demo ERP reached directly, without the
// edge, answers nothing without a valid assertion for its own backend,
// takes the company from the assertion alone, and listens only on the
// address it is given.
package assertion

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// stack is Caddyfile.example with two additions for the tests:
//   - version v9 of invoices is the demo's echo of request headers, so a
//     test reads the assertion the edge sends the invoices backend;
//   - a second demo ERP on ERP_DEMO2_LISTEN checks assertions against a
//     JWKS the test serves (jwks_url), so the test can sign assertions the
//     edge never would (expired, too long-lived, …).
func stack(t *testing.T, jwksURL string, env map[string]string) *stacktest.Instance {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	v2 := "\t\t\tversion v2 http://{$ERP_DEMO_LISTEN:127.0.0.1:9001}/v2\n\t\t}\n\t\tbackend customers {"
	if !strings.Contains(cfg, v2) {
		t.Fatal("Caddyfile.example: the invoices backend is not where this test expects it")
	}
	cfg = strings.Replace(cfg, v2, "\t\t\tversion v2 http://{$ERP_DEMO_LISTEN:127.0.0.1:9001}/v2\n"+
		"\t\t\tversion v9 http://{$ERP_DEMO_LISTEN:127.0.0.1:9001}/_demo/echo-headers\n\t\t}\n\t\tbackend customers {", 1)
	cfg += `
http://{$ERP_DEMO2_LISTEN} {
	bind {$ERP_DEMO2_LISTEN}
	erp_demo {
		jwks_url {$ERP_TEST_JWKS}
		issuer ` + testIssuer + `
	}
}
`
	all := map[string]string{
		"ERP_DEMO2_LISTEN": "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)),
		"ERP_TEST_JWKS":    jwksURL,
	}
	for k, v := range env {
		all[k] = v
	}
	return stacktest.Start(t, stacktest.Options{Config: cfg, Env: all})
}

const testIssuer = "https://edge.test"

// testEdge publishes an assertion key (edge-test) and an access-token key
// (at-test) the way the edge does, and signs with them.
type testEdge struct {
	keys map[string]ed25519.PrivateKey
	srv  *httptest.Server
}

func newTestEdge(t *testing.T) *testEdge {
	e := &testEdge{keys: map[string]ed25519.PrivateKey{}}
	set := jwk.NewSet()
	for _, kid := range []string{"edge-test", "at-test"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[kid] = priv
		k, err := jwk.Import(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
		_ = k.Set(jwk.KeyUsageKey, "sig")
		_ = set.AddKey(k)
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (e *testEdge) sign(kid, header string, claims map[string]any) string {
	c, _ := json.Marshal(claims)
	in := b64([]byte(header)) + "." + b64(c)
	return in + "." + b64(ed25519.Sign(e.keys[kid], []byte(in)))
}

func assertionClaims(company, backend string, iat time.Time, change map[string]any) map[string]any {
	c := map[string]any{"iss": testIssuer, "aud": backend, "sub": "usr_test", "cid": company,
		"roles": []string{"admin"}, "scope": backend + ":read", "plan": "standard",
		"iat": iat.Unix(), "exp": iat.Add(time.Minute).Unix(), "jti": "j"}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

const edgeHeader = `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-test"}`

// direct sends a request straight to a demo, with header values as given
// (a repeated name sends the header twice).
func direct(t *testing.T, method, url string, header [][2]string, body string) *httpt.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, kv := range header {
		req.Header[kv[0]] = append(req.Header[kv[0]], kv[1])
	}
	resp, err := httpt.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &httpt.Response{Response: resp, Body: b}
}

func expect401(t *testing.T, resp *httpt.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %.300s", resp.StatusCode, resp.Body)
	}
	if resp.Header.Get("WWW-Authenticate") == "" || !json.Valid(resp.Body) {
		t.Fatalf("401 without a challenge or a JSON body: %v %s", resp.Header, resp.Body)
	}
	if bytes.Contains(resp.Body, []byte("acme")) || bytes.Contains(resp.Body, []byte("globex")) {
		t.Fatalf("a refusal with company data: %s", resp.Body)
	}
}

// edgeAssertion is the assertion the edge sends the invoices backend for
// tokens' caller, read back from the demo's header echo (version v9).
func edgeAssertion(t *testing.T, in *stacktest.Instance, access string) string {
	t.Helper()
	resp := httpt.Get(t, in.URL+"/api/v9/invoices", demoauth.Bearer(access))
	env := resp.Envelope(t)
	if resp.StatusCode != 200 {
		t.Fatalf("echo through the edge: %d %s", resp.StatusCode, resp.Body)
	}
	var echo struct {
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal(env.Data, &echo); err != nil {
		t.Fatal(err)
	}
	a := echo.Headers["X-Erp-Assertion"]
	if len(a) != 1 || strings.Count(a[0], ".") != 2 {
		t.Fatalf("the edge sent the backend no assertion: %v", echo.Headers)
	}
	return a[0]
}

// TestDirectRequestsRefused: a request that did not come through the edge
// gets 401 from every ERP service of the demo, whatever identity headers or
// client credentials it carries.
func TestDirectRequestsRefused(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	in := stack(t, e.srv.URL, nil)
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	rpc := `{"jsonrpc":"2.0","id":1,"method":"call","params":{"model":"product.product","method":"search_read","args":[[]],"kwargs":{"limit":5}}}`
	for _, tt := range []struct {
		name, method, path, body string
		header                   [][2]string
	}{
		{"another company's invoices by header", "GET", "/v1/invoices", "", [][2]string{{"X-ERP-Company-ID", "globex"}}},
		{"customers by header", "GET", "/v2/customers", "", [][2]string{{"X-ERP-Company-ID", "acme"}, {"X-ERP-User-ID", "usr_alice"}, {"X-ERP-Roles", "admin"}}},
		{"products, header in lower case", "GET", "/v1/products", "", [][2]string{{"x-erp-company-id", "acme"}}},
		{"ledger (OData)", "GET", "/odata/v1/LedgerEntries", "", [][2]string{{"X-ERP-Company-ID", "acme"}}},
		{"catalogue (JSON-RPC)", "POST", "/jsonrpc", rpc, [][2]string{{"X-ERP-Company-ID", "acme"}}},
		{"a client's access token as the assertion", "GET", "/v1/invoices", "", [][2]string{{"X-ERP-Assertion", alice}}},
		{"a client's access token as a bearer", "GET", "/v1/invoices", "", [][2]string{{"Authorization", "Bearer " + alice}, {"X-ERP-Company-ID", "acme"}}},
		{"garbage assertion", "GET", "/v1/invoices", "", [][2]string{{"X-ERP-Assertion", "a.b.c"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expect401(t, direct(t, tt.method, in.DemoURL+tt.path, tt.header, tt.body))
		})
	}
}

// TestEdgeAssertionOnlyForItsBackend: the edge's real assertion for
// invoices opens invoices at the demo, for the caller's company only,
// whatever company header comes with it, and nothing else.
func TestEdgeAssertionOnlyForItsBackend(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	in := stack(t, e.srv.URL, nil)
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	a := edgeAssertion(t, in, alice)

	resp := direct(t, "GET", in.DemoURL+"/v1/invoices?limit=200", [][2]string{{"X-ERP-Assertion", a}, {"X-ERP-Company-ID", "globex"}, {"x-erp-company-id", "globex"}}, "")
	if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != "120" || bytes.Contains(resp.Body, []byte("globex")) {
		t.Fatalf("acme's assertion with a globex header: %d, total %s: %.300s", resp.StatusCode, resp.Header.Get("X-Total-Count"), resp.Body)
	}
	if resp := direct(t, "GET", in.DemoURL+"/v1/invoices/inv_globex_0001", [][2]string{{"X-ERP-Assertion", a}, {"X-ERP-Company-ID", "globex"}}, ""); resp.StatusCode != 404 {
		t.Fatalf("globex's invoice with acme's assertion: %d", resp.StatusCode)
	}
	for _, tt := range []struct {
		name   string
		path   string
		header [][2]string
	}{
		{"customers", "/v1/customers", [][2]string{{"X-ERP-Assertion", a}}},
		{"products", "/v2/products", [][2]string{{"X-ERP-Assertion", a}}},
		{"ledger", "/odata/v1/LedgerEntries", [][2]string{{"X-ERP-Assertion", a}}},
		{"sent twice", "/v1/invoices", [][2]string{{"X-ERP-Assertion", a}, {"X-ERP-Assertion", a}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expect401(t, direct(t, "GET", in.DemoURL+tt.path, tt.header, ""))
		})
	}
}

// TestDeleteWithoutAssertionDeletesNothing: the request that deleted
// another company's invoice before, and a PATCH like it, change nothing.
func TestDeleteWithoutAssertionDeletesNothing(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	in := stack(t, e.srv.URL, nil)
	bob := demoauth.Bearer(demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access)
	read := func(id string) string {
		resp := httpt.Get(t, in.URL+"/api/v2/invoices/"+id, bob)
		env := resp.Envelope(t)
		if resp.StatusCode != 200 {
			t.Fatalf("%s through the edge: %d %s", id, resp.StatusCode, resp.Body)
		}
		return string(env.Data)
	}
	before1, before2 := read("inv_globex_0001"), read("inv_globex_0002")
	expect401(t, direct(t, "DELETE", in.DemoURL+"/v1/invoices/inv_globex_0001", [][2]string{{"X-ERP-Company-ID", "globex"}}, ""))
	expect401(t, direct(t, "PATCH", in.DemoURL+"/v1/invoices/inv_globex_0002", [][2]string{{"X-ERP-Company-ID", "globex"}}, `{"status":"paid","amount":1}`))
	if after := read("inv_globex_0001"); after != before1 {
		t.Fatalf("inv_globex_0001 changed: %s → %s", before1, after)
	}
	if after := read("inv_globex_0002"); after != before2 {
		t.Fatalf("inv_globex_0002 changed: %s → %s", before2, after)
	}
}

// TestThroughTheEdge: every kind of backend still answers through the
// edge, for the caller's company, and the backend receives one assertion
// for itself and none of the client's identity headers.
func TestThroughTheEdge(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	in := stack(t, e.srv.URL, nil)
	alice := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	alice["X-ERP-Company-ID"] = "globex"
	for _, path := range []string{"/api/v2/invoices?limit=3", "/api/v1/customers?limit=3", "/api/v2/products?limit=3", "/api/v1/ledger?limit=3", "/api/v1/inventory?limit=3"} {
		resp := httpt.Get(t, in.URL+path, alice)
		env := resp.Envelope(t)
		if resp.StatusCode != 200 || !env.Success || env.Meta.CompanyID != "acme" || bytes.Contains(env.Data, []byte("globex")) {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, resp.Body)
		}
	}
	resp := httpt.Get(t, in.URL+"/api/v9/invoices", alice)
	var echo struct {
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal(resp.Envelope(t).Data, &echo); err != nil {
		t.Fatal(err)
	}
	if v := echo.Headers["X-Erp-Company-Id"]; len(v) > 0 && v[0] != "acme" {
		t.Fatalf("the backend got the client's company header: %v", v)
	}
	a := echo.Headers["X-Erp-Assertion"]
	if len(a) != 1 {
		t.Fatalf("assertions sent: %v", a)
	}
	parts := strings.Split(a[0], ".")
	var hdr struct{ Alg, Typ, Kid string }
	var claims struct {
		Aud any    `json:"aud"`
		Cid string `json:"cid"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
	}
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &hdr) != nil || json.Unmarshal(pb, &claims) != nil {
		t.Fatalf("assertion not JSON: %s %s", hb, pb)
	}
	if hdr.Alg != "EdDSA" || hdr.Typ != "erp-edge+jwt" || !strings.HasPrefix(hdr.Kid, "edge-") ||
		claims.Cid != "acme" || claims.Aud != "invoices" || claims.Exp-claims.Iat > 60 {
		t.Fatalf("assertion header %s claims %s", hb, pb)
	}
}

// TestAssertionChecks: the demo with jwks_url refuses every assertion the
// edge would not have made, and accepts the one it would.
func TestAssertionChecks(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	in := stack(t, e.srv.URL, nil)
	demo2 := "http://" + in.Env["ERP_DEMO2_LISTEN"]
	now := time.Now()
	good := e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now, nil))
	parts := strings.Split(good, ".")
	hs256 := func() string { // key confusion: the Ed25519 public key as an HMAC secret
		c, _ := json.Marshal(assertionClaims("acme", "invoices", now, nil))
		in := b64([]byte(`{"alg":"HS256","typ":"erp-edge+jwt","kid":"edge-test"}`)) + "." + b64(c)
		m := hmac.New(sha256.New, e.keys["edge-test"].Public().(ed25519.PublicKey))
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}()
	for _, tt := range []struct {
		name, token string
		status      int
	}{
		{"good", good, 200},
		{"expired", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now.Add(-3*time.Minute), nil)), 401},
		{"issued in the future", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now.Add(2*time.Minute), nil)), 401},
		{"lives 10 minutes", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now, map[string]any{"exp": now.Add(10 * time.Minute).Unix()})), 401},
		{"no exp", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now, map[string]any{"exp": nil})), 401},
		{"another backend's", e.sign("edge-test", edgeHeader, assertionClaims("acme", "ledger", now, nil)), 401},
		{"foreign issuer", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now, map[string]any{"iss": "https://evil.test"})), 401},
		{"no company", e.sign("edge-test", edgeHeader, assertionClaims("acme", "invoices", now, map[string]any{"cid": nil})), 401},
		{"access token", e.sign("at-test", `{"alg":"EdDSA","typ":"at+jwt","kid":"at-test"}`, assertionClaims("acme", "invoices", now, map[string]any{"sid": "s"})), 401},
		{"access key, assertion typ", e.sign("at-test", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"at-test"}`, assertionClaims("acme", "invoices", now, nil)), 401},
		{"unknown kid", e.sign("edge-test", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-nope"}`, assertionClaims("acme", "invoices", now, nil)), 401},
		{"alg none", b64([]byte(`{"alg":"none","typ":"erp-edge+jwt","kid":"edge-test"}`)) + "." + parts[1] + ".", 401},
		{"HS256 key confusion", hs256, 401},
		{"jku", e.sign("edge-test", `{"alg":"EdDSA","typ":"erp-edge+jwt","kid":"edge-test","jku":"http://127.0.0.1:1/jwks"}`, assertionClaims("acme", "invoices", now, nil)), 401},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], 401},
		{"signature of another token", parts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","aud":"invoices","sub":"x","cid":"globex"}`)) + "." + parts[2], 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := direct(t, "GET", demo2+"/v1/invoices?limit=1", [][2]string{{"X-ERP-Assertion", tt.token}, {"X-ERP-Company-ID", "globex"}}, "")
			if tt.status == 401 {
				expect401(t, resp)
				return
			}
			if resp.StatusCode != 200 || !bytes.Contains(resp.Body, []byte("inv_acme_")) {
				t.Fatalf("%d %.300s", resp.StatusCode, resp.Body)
			}
		})
	}
}

// TestListenersBindTheirAddress: with ERP_DEMO_LISTEN and ERP_LISTEN on
// 127.0.0.2, nothing listens on those ports at 127.0.0.1, and the stack
// still works; so does `gateway authsvc` with its own address.
func TestListenersBindTheirAddress(t *testing.T) {
	t.Parallel()
	e := newTestEdge(t)
	demoPort, edgePort := stacktest.FreePort(t), stacktest.FreePort(t)
	in := stack(t, e.srv.URL, map[string]string{
		"ERP_DEMO_LISTEN": "127.0.0.2:" + strconv.Itoa(demoPort),
		"ERP_LISTEN":      "127.0.0.2:" + strconv.Itoa(edgePort),
	})
	for _, port := range []int{demoPort, edgePort} {
		expectClosed(t, "127.0.0.1:"+strconv.Itoa(port))
		expectOpen(t, "127.0.0.2:"+strconv.Itoa(port))
	}
	resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access))
	if resp.StatusCode != 200 {
		t.Fatalf("through the edge on 127.0.0.2: %d %s", resp.StatusCode, resp.Body)
	}

	// the standalone auth service
	port := stacktest.FreePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "authsvc.yaml")
	if err := os.WriteFile(file, []byte("listen: \"127.0.0.1:1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stacktest.Binary(t), "authsvc", "--config", file)
	cmd.Env = append(os.Environ(), "ERP_LISTEN=127.0.0.2:"+strconv.Itoa(port), "ERP_POSTGRES_URL=", "ERP_REDIS_URL=",
		"ERP_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "ERP_INTROSPECTION_SECRET=s3cret-s3cret-s3cret", "HOME="+dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := "127.0.0.2:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("authsvc exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authsvc did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectClosed(t, "127.0.0.1:"+strconv.Itoa(port))
}

func expectClosed(t *testing.T, addr string) {
	t.Helper()
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepts connections: the listener binds more than its address", addr)
	}
}

func expectOpen(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	c.Close()
}
