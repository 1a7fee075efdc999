package authsvc_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/erpgate/erpgate/authsvc"
)

// fakeIdP is an OpenID provider whose every answer the test controls: its
// ID tokens are signed here with jwx (an implementation independent of
// the service's go-oidc), so that nonce, audience, issuer, expiry and
// signature can be made wrong one at a time.
type fakeIdP struct {
	srv      *httptest.Server
	key      jwk.Key // publishes and signs
	otherKey jwk.Key // signs only (a key the IdP never published)
	clientID string
	secret   string

	mu    sync.Mutex
	codes map[string]fakeGrant // code → what it was issued for
	// exchanges counts token requests whose client secret and PKCE
	// verifier were right.
	exchanges int
}

type fakeGrant struct {
	challenge string
	claims    map[string]any
	signWith  jwk.Key
}

func rsaJWK(t *testing.T, kid string) jwk.Key {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.AlgorithmKey, jwa.RS256())
	return k
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	f := &fakeIdP{key: rsaJWK(t, "k1"), otherKey: rsaJWK(t, "k1"), clientID: "erpgate-client", secret: "s3cr3t-Client-Secret-Value", codes: map[string]fakeGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		pub, err := jwk.PublicKeyOf(f.key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		set := jwk.NewSet()
		_ = set.AddKey(pub)
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", 400)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		f.mu.Lock()
		g, known := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		f.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		if id != f.clientID || secret != f.secret || !known || r.PostForm.Get("grant_type") != "authorization_code" ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		f.mu.Lock()
		f.exchanges++
		f.mu.Unlock()
		payload, _ := json.Marshal(g.claims)
		h := jws.NewHeaders()
		_ = h.Set(jws.KeyIDKey, "k1")
		_ = h.Set(jws.TypeKey, "JWT")
		signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), g.signWith, jws.WithProtectedHeaders(h)))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + randomHex(), "token_type": "Bearer", "expires_in": 300, "id_token": string(signed)})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorize plays the IdP's sign-in for the authorization URL the service
// redirected to: it checks the request (PKCE S256, redirect URI, client)
// and issues a code for claims; it returns the callback's query.
func (f *fakeIdP) authorize(t *testing.T, location string, claims func(nonce string) map[string]any, signWith jwk.Key) url.Values {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, f.srv.URL+"/authorize?") {
		t.Fatalf("start redirected to %q, not the IdP", location)
	}
	q := u.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != f.clientID || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("redirect_uri") != "http://erp.test/api/v1/auth/sso/callback" ||
		!strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		t.Fatalf("authorization request: %v", q)
	}
	if signWith == nil {
		signWith = f.key
	}
	code := "code-" + randomHex()
	f.mu.Lock()
	f.codes[code] = fakeGrant{challenge: q.Get("code_challenge"), claims: claims(q.Get("nonce")), signWith: signWith}
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

// raw sends a request to the service and returns the recorder (redirects
// have no body).
func (e *env) raw(t *testing.T, method, target string, cookies []*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func envelopeOf(t *testing.T, w *httptest.ResponseRecorder) answer {
	t.Helper()
	a := answer{Status: w.Code, Header: w.Header(), Raw: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &a.Body); err != nil {
		t.Fatalf("answer is not JSON (%d): %q", w.Code, w.Body.String())
	}
	checkEnvelope(t, a)
	return a
}

type ssoFixture struct {
	e      *env
	idp    *fakeIdP
	connID string
	admin  string // root's access token
}

func newSSOFixture(t *testing.T, jit bool) *ssoFixture {
	t.Helper()
	e := newEnv(t, envOpts{cfg: authsvc.Config{PublicURL: "http://erp.test", SSOAllowPrivate: true}})
	idp := newFakeIdP(t)
	root := e.session(t, "root@erpgate.local", "acme").str("access_token")
	a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies/acme/sso", bearer: root, body: map[string]any{
		"kind": "oidc", "name": "Acme IdP", "domains": []string{"acme-sso.test", "acme.test"}, "jit": jit, "default_role": "sales",
		"oidc": map[string]any{"issuer": idp.srv.URL, "client_id": idp.clientID, "client_secret": idp.secret},
	}})
	if a.Status != 201 {
		t.Fatalf("create connection: %d %s", a.Status, a.Raw)
	}
	return &ssoFixture{e: e, idp: idp, connID: a.str("id"), admin: root}
}

func (f *ssoFixture) goodClaims(email string) func(string) map[string]any {
	return func(nonce string) map[string]any {
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the env's clock
		return map[string]any{"iss": f.idp.srv.URL, "sub": "idp-" + email, "aud": f.idp.clientID, "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "nonce": nonce, "email": email, "email_verified": true, "name": "SSO Person"}
	}
}

// start begins a flow and returns the IdP location and the flow cookie.
func (f *ssoFixture) start(t *testing.T, query string) (string, []*http.Cookie) {
	t.Helper()
	w := f.e.raw(t, "GET", "/api/v1/auth/sso/acme/start?connection="+f.connID+query, nil)
	if w.Code != 302 {
		t.Fatalf("start: %d %s", w.Code, w.Body.String())
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].Path != "/api/v1/auth/sso" ||
		cookies[0].Secure || cookies[0].MaxAge <= 0 || cookies[0].MaxAge > 600 {
		t.Fatalf("flow cookie: %+v", cookies)
	}
	return w.Header().Get("Location"), cookies
}

func (f *ssoFixture) callback(t *testing.T, q url.Values, cookies []*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	return f.e.raw(t, "GET", "/api/v1/auth/sso/callback?"+q.Encode(), cookies)
}

// refused asserts the one generic 401 and an audited reason.
func (f *ssoFixture) refused(t *testing.T, w *httptest.ResponseRecorder, reason string) {
	t.Helper()
	a := envelopeOf(t, w)
	if a.Status != 401 || a.code() != "UNAUTHENTICATED" || strings.Contains(a.Raw, "login_token") {
		t.Fatalf("want 401 UNAUTHENTICATED, got %d %s", a.Status, a.Raw)
	}
	// The refusal's own audit record (by its request id) names the reason.
	rid, _ := a.Body["meta"].(map[string]any)["request_id"].(string)
	evs := f.e.do(t, req{method: "GET", path: "/api/v1/admin/audit?type=sso.refused&limit=100", bearer: f.admin})
	list, _ := evs.Body["data"].([]any)
	for _, item := range list {
		ev, _ := item.(map[string]any)
		if ev["request_id"] == rid {
			if got := ev["details"].(map[string]any)["reason"]; got != reason {
				t.Fatalf("refused with reason %v, want %s: %v", got, reason, ev)
			}
			return
		}
	}
	t.Fatalf("no sso.refused audit record of request %s: %s", rid, evs.Raw)
}

func TestSSOOIDCFlow(t *testing.T) {
	t.Parallel()
	f := newSSOFixture(t, true)

	t.Run("success with JIT, then select-company", func(t *testing.T) {
		loc, ck := f.start(t, "")
		w := f.callback(t, f.idp.authorize(t, loc, f.goodClaims("newbie@acme-sso.test"), nil), ck)
		a := envelopeOf(t, w)
		if a.Status != 200 || a.str("login_token") == "" || a.data()["mfa_required"] != false {
			t.Fatalf("callback: %d %s", a.Status, a.Raw)
		}
		user, _ := a.data()["user"].(map[string]any)
		if user["email"] != "newbie@acme-sso.test" || user["name"] != "SSO Person" {
			t.Fatalf("user = %v", user)
		}
		sel := f.e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": a.str("login_token"), "company_id": "acme"}})
		if sel.Status != 200 || !strings.Contains(sel.Raw, `"roles":["sales"]`) {
			t.Fatalf("select-company: %d %s", sel.Status, sel.Raw)
		}
		// The flow's cookie is cleared; the state does not come back.
		if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
			t.Fatalf("cookie not cleared: %+v", c)
		}
		// A second sign-in of the same person finds the account.
		loc, ck = f.start(t, "")
		if a := envelopeOf(t, f.callback(t, f.idp.authorize(t, loc, f.goodClaims("newbie@acme-sso.test"), nil), ck)); a.Status != 200 {
			t.Fatalf("second sign-in: %d %s", a.Status, a.Raw)
		}
	})

	t.Run("return_to gets the answer in the fragment", func(t *testing.T) {
		loc, ck := f.start(t, "&return_to=%2Flogin%3Fnext%3Dx")
		w := f.callback(t, f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil), ck)
		if w.Code != 302 {
			t.Fatalf("callback: %d %s", w.Code, w.Body.String())
		}
		to := w.Header().Get("Location")
		prefix := "http://erp.test/login?next=x#sso_result="
		if !strings.HasPrefix(to, prefix) {
			t.Fatalf("redirect to %q", to)
		}
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(to, prefix))
		var res struct {
			LoginToken string                 `json:"login_token"`
			User       struct{ Email string } `json:"user"`
		}
		if err != nil || json.Unmarshal(b, &res) != nil || res.LoginToken == "" || res.User.Email != "alice@acme.test" {
			t.Fatalf("fragment %q: %v", b, err)
		}
		// A refusal with return_to comes back as #sso_error.
		loc, ck = f.start(t, "&return_to=/login")
		w = f.callback(t, f.idp.authorize(t, loc, f.goodClaims("eve@elsewhere.test"), nil), ck)
		if to := w.Header().Get("Location"); w.Code != 302 || !strings.HasPrefix(to, "http://erp.test/login#sso_error=") {
			t.Fatalf("refusal with return_to: %d %q", w.Code, to)
		}
	})

	refusals := []struct {
		name   string
		claims func(f *ssoFixture) func(string) map[string]any
		other  bool // signed by a key the IdP never published
		reason string
	}{
		{"wrong nonce", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["nonce"] = "another-nonce"
				return c
			}
		}, false, "nonce_mismatch"},
		{"no nonce", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				delete(c, "nonce")
				return c
			}
		}, false, "nonce_mismatch"},
		{"signed by another key", func(f *ssoFixture) func(string) map[string]any { return f.goodClaims("carol@acme-sso.test") }, true, "id_token_invalid"},
		{"audience of another client", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["aud"] = "another-client"
				return c
			}
		}, false, "id_token_invalid"},
		{"several audiences without azp", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["aud"] = []string{f.idp.clientID, "another-client"}
				return c
			}
		}, false, "id_token_invalid"},
		{"another issuer", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["iss"] = "https://evil.test"
				return c
			}
		}, false, "id_token_invalid"},
		{"expired", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["exp"] = time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC).Unix()
				return c
			}
		}, false, "id_token_invalid"},
		{"email not verified", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				c["email_verified"] = false
				return c
			}
		}, false, "email_unverified"},
		{"no email", func(f *ssoFixture) func(string) map[string]any {
			return func(n string) map[string]any {
				c := f.goodClaims("carol@acme-sso.test")(n)
				delete(c, "email")
				return c
			}
		}, false, "email_missing"},
		{"domain not the connection's", func(f *ssoFixture) func(string) map[string]any { return f.goodClaims("bob@globex.test") }, false, "domain_not_allowed"},
		{"look-alike domain", func(f *ssoFixture) func(string) map[string]any {
			return f.goodClaims("mallory@acme-sso.test.evil.test")
		}, false, "domain_not_allowed"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			loc, ck := f.start(t, "")
			var key jwk.Key
			if tc.other {
				key = f.idp.otherKey
			}
			f.refused(t, f.callback(t, f.idp.authorize(t, loc, tc.claims(f), key), ck), tc.reason)
		})
	}
	t.Run("refusals provisioned nobody", func(t *testing.T) {
		users := f.e.do(t, req{method: "GET", path: "/api/v1/admin/users?limit=100", bearer: f.admin})
		if users.Status != 200 || strings.Contains(users.Raw, "carol@") || strings.Contains(users.Raw, "mallory@") || !strings.Contains(users.Raw, "newbie@acme-sso.test") {
			t.Fatalf("users: %d %s", users.Status, users.Raw)
		}
	})

	t.Run("state", func(t *testing.T) {
		loc, ck := f.start(t, "")
		q := f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil)
		// missing state
		f.refused(t, f.callback(t, url.Values{"code": {q.Get("code")}}, ck), "state_invalid")
		// no cookie (another browser)
		f.refused(t, f.callback(t, q, nil), "state_invalid")
		// another flow's cookie
		_, ck2 := f.start(t, "")
		f.refused(t, f.callback(t, q, ck2), "state_invalid")
		// a forged cookie under the right name
		forged := []*http.Cookie{{Name: ck[0].Name, Value: base64.RawURLEncoding.EncodeToString([]byte("forged-flow-data-forged-flow-data-forged"))}}
		f.refused(t, f.callback(t, q, forged), "state_invalid")
		// the real one works once
		if a := envelopeOf(t, f.callback(t, q, ck)); a.Status != 200 {
			t.Fatalf("callback: %d %s", a.Status, a.Raw)
		}
		// replayed (same cookie, same state)
		f.refused(t, f.callback(t, q, ck), "state_replayed")
	})

	t.Run("state expired", func(t *testing.T) {
		loc, ck := f.start(t, "")
		q := f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil)
		f.e.clock.Add(11 * time.Minute)
		defer f.e.clock.Add(-11 * time.Minute)
		f.refused(t, f.callback(t, q, ck), "state_expired")
	})

	t.Run("IdP error", func(t *testing.T) {
		loc, ck := f.start(t, "")
		q := f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil)
		f.refused(t, f.callback(t, url.Values{"state": {q.Get("state")}, "error": {"access_denied"}}, ck), "idp_error")
	})

	t.Run("wrong PKCE verifier or code", func(t *testing.T) {
		loc, ck := f.start(t, "")
		q := f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil)
		q.Set("code", "not-the-code")
		f.refused(t, f.callback(t, q, ck), "code_exchange")
	})

	t.Run("start", func(t *testing.T) {
		for _, rt := range []string{"//evil.test/x", "https://evil.test/", "/\\evil.test", "login", "/a#b", "/\r\nSet-Cookie:x", "/a b"} {
			w := f.e.raw(t, "GET", "/api/v1/auth/sso/acme/start?connection="+f.connID+"&return_to="+url.QueryEscape(rt), nil)
			if a := envelopeOf(t, w); a.Status != 422 || a.code() != "VALIDATION_FAILED" {
				t.Fatalf("return_to %q: %d %s", rt, a.Status, a.Raw)
			}
		}
		// another company's connection, an unknown one
		for _, path := range []string{"/api/v1/auth/sso/globex/start?connection=" + f.connID, "/api/v1/auth/sso/globex/start",
			"/api/v1/auth/sso/acme/start?connection=00000000-0000-0000-0000-000000000000"} {
			if a := envelopeOf(t, f.e.raw(t, "GET", path, nil)); a.Status != 404 {
				t.Fatalf("%s: %d %s", path, a.Status, a.Raw)
			}
		}
		// with one connection the id may be left out
		if w := f.e.raw(t, "GET", "/api/v1/auth/sso/acme/start", nil); w.Code != 302 {
			t.Fatalf("start without connection: %d", w.Code)
		}
	})

	if f.idp.exchanges == 0 {
		t.Fatal("no code was exchanged with a right secret and PKCE verifier")
	}
}

func TestSSOOIDCWithoutJIT(t *testing.T) {
	t.Parallel()
	f := newSSOFixture(t, false)
	loc, ck := f.start(t, "")
	f.refused(t, f.callback(t, f.idp.authorize(t, loc, f.goodClaims("stranger@acme-sso.test"), nil), ck), "not_provisioned")
	// alice exists and is a member: signs in; once her membership is removed, refused
	loc, ck = f.start(t, "")
	if a := envelopeOf(t, f.callback(t, f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil), ck)); a.Status != 200 {
		t.Fatalf("alice: %d %s", a.Status, a.Raw)
	}
	if d := f.e.do(t, req{method: "DELETE", path: "/api/v1/admin/memberships/acme/alice@acme.test", bearer: f.admin}); d.Status != 200 {
		t.Fatalf("delete membership: %d %s", d.Status, d.Raw)
	}
	loc, ck = f.start(t, "")
	f.refused(t, f.callback(t, f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil), ck), "not_member")
	// a connection deleted during the flow
	loc, ck = f.start(t, "")
	q := f.idp.authorize(t, loc, f.goodClaims("alice@acme.test"), nil)
	if d := f.e.do(t, req{method: "DELETE", path: "/api/v1/admin/companies/acme/sso/" + f.connID, bearer: f.admin}); d.Status != 200 {
		t.Fatalf("delete connection: %d %s", d.Status, d.Raw)
	}
	f.refused(t, f.callback(t, q, ck), "connection_gone")
}

func TestSSOConnectionsAdmin(t *testing.T) {
	t.Parallel()
	f := newSSOFixture(t, true)
	e := f.e
	alice := e.session(t, "alice@acme.test", "acme").str("access_token")         // acme admin
	aliceGlobex := e.session(t, "alice@acme.test", "globex").str("access_token") // globex viewer
	list := e.do(t, req{method: "GET", path: "/api/v1/admin/companies/acme/sso", bearer: alice})
	if list.Status != 200 || !strings.Contains(list.Raw, `"client_secret_set":true`) || strings.Contains(list.Raw, f.idp.secret) ||
		!strings.Contains(list.Raw, `"start_url":"http://erp.test/api/v1/auth/sso/acme/start?connection=`+f.connID+`"`) ||
		!strings.Contains(list.Raw, `"redirect_uri":"http://erp.test/api/v1/auth/sso/callback"`) {
		t.Fatalf("list: %d %s", list.Status, list.Raw)
	}
	for _, tc := range []struct {
		name, method, path, bearer string
		status                     int
	}{
		{"acme admin reads globex's", "GET", "/api/v1/admin/companies/globex/sso", alice, 403},
		{"a viewer reads its company's", "GET", "/api/v1/admin/companies/globex/sso", aliceGlobex, 403},
		{"acme's connection under globex", "GET", "/api/v1/admin/companies/globex/sso/" + f.connID, f.admin, 404},
		{"acme's connection deleted under globex", "DELETE", "/api/v1/admin/companies/globex/sso/" + f.connID, f.admin, 404},
		{"no token", "GET", "/api/v1/admin/companies/acme/sso", "", 401},
		{"unknown company", "GET", "/api/v1/admin/companies/nope/sso", f.admin, 404},
		{"one connection", "GET", "/api/v1/admin/companies/acme/sso/" + f.connID, alice, 200},
	} {
		if a := e.do(t, req{method: tc.method, path: tc.path, bearer: tc.bearer}); a.Status != tc.status || strings.Contains(a.Raw, f.idp.secret) {
			t.Errorf("%s: %d %s", tc.name, a.Status, a.Raw)
		}
	}
	good := func() map[string]any {
		return map[string]any{"kind": "oidc", "name": "x", "domains": []string{"other-sso.test"},
			"oidc": map[string]any{"issuer": f.idp.srv.URL, "client_id": "c", "client_secret": "s"}}
	}
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		status int
		field  string
	}{
		{"public suffix", func(m map[string]any) { m["domains"] = []string{"com"} }, 422, "domains"},
		{"public suffix co.uk", func(m map[string]any) { m["domains"] = []string{"co.uk"} }, 422, "domains"},
		{"upper case", func(m map[string]any) { m["domains"] = []string{"Other-SSO.test"} }, 422, "domains"},
		{"duplicate", func(m map[string]any) { m["domains"] = []string{"other-sso.test", "other-sso.test"} }, 422, "domains"},
		{"no domains", func(m map[string]any) { m["domains"] = []string{} }, 422, "domains"},
		{"not a domain", func(m map[string]any) { m["domains"] = []string{"a b.test"} }, 422, "domains"},
		{"taken domain", func(m map[string]any) { m["domains"] = []string{"acme.test"} }, 409, ""},
		{"owner as default role", func(m map[string]any) { m["default_role"] = "owner" }, 422, "default_role"},
		{"unknown role", func(m map[string]any) { m["default_role"] = "god" }, 422, "default_role"},
		{"unknown kind", func(m map[string]any) { m["kind"] = "ldap" }, 422, "kind"},
		{"issuer not a URL", func(m map[string]any) { m["oidc"].(map[string]any)["issuer"] = "not a url" }, 422, "oidc.issuer"},
		{"issuer with a query", func(m map[string]any) { m["oidc"].(map[string]any)["issuer"] = f.idp.srv.URL + "?x=1" }, 422, "oidc.issuer"},
		{"issuer that does not answer", func(m map[string]any) { m["oidc"].(map[string]any)["issuer"] = "http://127.0.0.1:1" }, 422, "oidc.issuer"},
		{"no secret", func(m map[string]any) { delete(m["oidc"].(map[string]any), "client_secret") }, 422, "oidc.client_secret"},
		{"scopes without openid", func(m map[string]any) { m["oidc"].(map[string]any)["scopes"] = []string{"email"} }, 422, "oidc.scopes"},
		{"unknown claim", func(m map[string]any) { m["oidc"].(map[string]any)["claims"] = map[string]any{"role": "x"} }, 422, "oidc.claims"},
		{"unknown member", func(m map[string]any) { m["extra"] = true }, 400, "extra"},
	} {
		m := good()
		tc.change(m)
		a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies/acme/sso", bearer: alice, body: m})
		field := ""
		if errs, _ := a.Body["errors"].([]any); len(errs) > 0 {
			field, _ = errs[0].(map[string]any)["field"].(string)
		}
		if a.Status != tc.status || field != tc.field {
			t.Errorf("%s: %d %s", tc.name, a.Status, a.Raw)
		}
	}
	// A company admin creates one for their company; an IDN domain is kept as A-labels.
	m := good()
	m["domains"] = []string{"bücher-sso.test"}
	a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies/acme/sso", bearer: alice, body: m})
	if a.Status != 201 || !strings.Contains(a.Raw, `"domains":["xn--bcher-sso-q9a.test"]`) || a.data()["default_role"] != "viewer" {
		t.Fatalf("create: %d %s", a.Status, a.Raw)
	}
	if d := e.do(t, req{method: "DELETE", path: "/api/v1/admin/companies/acme/sso/" + a.str("id"), bearer: aliceGlobex}); d.Status != 403 {
		t.Fatalf("globex token deletes acme's: %d %s", d.Status, d.Raw)
	}
	if d := e.do(t, req{method: "DELETE", path: "/api/v1/admin/companies/acme/sso/" + a.str("id"), bearer: alice}); d.Status != 200 {
		t.Fatalf("delete: %d %s", d.Status, d.Raw)
	}
	audit := e.do(t, req{method: "GET", path: "/api/v1/admin/audit?limit=200", bearer: f.admin})
	if !strings.Contains(audit.Raw, `"admin.sso.created"`) || !strings.Contains(audit.Raw, `"admin.sso.deleted"`) || strings.Contains(audit.Raw, f.idp.secret) {
		t.Fatalf("audit: %s", audit.Raw)
	}
	for _, entry := range e.logs.All() {
		if strings.Contains(entry.Message+" "+jsonFields(entry.ContextMap()), f.idp.secret) {
			t.Fatalf("the client secret is in a log line: %v", entry)
		}
	}
}

func jsonFields(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestSSORequiredAtLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{PublicURL: "http://erp.test", SSOAllowPrivate: true}})
	idp := newFakeIdP(t)
	root := e.session(t, "root@erpgate.local", "globex").str("access_token")
	a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies/globex/sso", bearer: root, body: map[string]any{
		"kind": "oidc", "name": "Globex IdP", "domains": []string{"globex.test"}, "required": true,
		"oidc": map[string]any{"issuer": idp.srv.URL, "client_id": idp.clientID, "client_secret": idp.secret},
	}})
	if a.Status != 201 {
		t.Fatalf("create: %d %s", a.Status, a.Raw)
	}
	for _, pw := range []string{authsvc.DemoPassword, "wrong-password", ""} {
		l := e.login(t, "BOB@globex.test", pw)
		if l.Status != 200 || l.data()["sso_required"] != true || l.str("login_token") != "" ||
			l.str("sso_url") != "http://erp.test/api/v1/auth/sso/globex/start?connection="+a.str("id") || l.str("company_id") != "globex" {
			t.Fatalf("login with %q: %d %s", pw, l.Status, l.Raw)
		}
	}
	// An unknown address of the domain gets the same answer (no enumeration).
	if l := e.login(t, "nobody@globex.test", "x"); l.Status != 200 || l.data()["sso_required"] != true {
		t.Fatalf("unknown: %d %s", l.Status, l.Raw)
	}
	// Other domains log in with passwords as before.
	if l := e.login(t, "alice@acme.test", authsvc.DemoPassword); l.Status != 200 || l.str("login_token") == "" {
		t.Fatalf("alice: %d %s", l.Status, l.Raw)
	}
}

func TestSSOOutboundRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{PublicURL: "https://erp.test"}})
	idp := newFakeIdP(t) // on loopback
	root := e.session(t, "root@erpgate.local", "acme").str("access_token")
	for _, issuer := range []string{idp.srv.URL, "https://127.0.0.1:1", "https://169.254.169.254", "https://[::1]:443", "https://10.0.0.1"} {
		a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies/acme/sso", bearer: root, body: map[string]any{
			"kind": "oidc", "name": "x", "domains": []string{"acme-sso.test"},
			"oidc": map[string]any{"issuer": issuer, "client_id": "c", "client_secret": "s"},
		}})
		if a.Status != 422 || !strings.Contains(a.Raw, `"field":"oidc.issuer"`) {
			t.Fatalf("issuer %s: %d %s", issuer, a.Status, a.Raw)
		}
	}
}
