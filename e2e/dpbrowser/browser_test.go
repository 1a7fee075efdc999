// Package dpbrowser drives the browser side of the data plane through the
// running gateway binary on Caddyfile.example: cookie mode (the
// __Host-erp_* cookies of select-company, refresh and logout, the access
// token cookie as the edge's credential, the CSRF check of unsafe
// methods, bearer tokens unaffected), compressed answers and the security
// headers.
package dpbrowser

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// jar is a browser's cookie store for one site, kept by hand: Go's
// cookiejar does not send Secure cookies over http://, which browsers do
// for localhost. It records every Set-Cookie so the test can check its
// attributes.
type jar struct {
	t       testing.TB
	cookies map[string]*http.Cookie
}

func newJar(t testing.TB) *jar { return &jar{t: t, cookies: map[string]*http.Cookie{}} }

// take stores resp's cookies (a Max-Age < 0 deletes one).
func (j *jar) take(resp *httpt.Response) {
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
			continue
		}
		j.cookies[c.Name] = c
	}
}

// header is the Cookie header of the stored cookies.
func (j *jar) header() string {
	var parts []string
	for _, c := range j.cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

func (j *jar) value(name string) string {
	if c := j.cookies[name]; c != nil {
		return c.Value
	}
	return ""
}

// do sends a request with the jar's cookies and extra headers and stores
// the answer's cookies.
func (j *jar) do(method, url string, body []byte, h map[string]string) *httpt.Response {
	j.t.Helper()
	hdr := map[string]string{"Cookie": j.header()}
	for k, v := range h {
		hdr[k] = v
	}
	resp := httpt.Do(j.t, method, url, body, hdr)
	j.take(resp)
	return resp
}

// loginToken signs alice in and returns her login token.
func loginToken(t *testing.T, base string) string {
	t.Helper()
	body := httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": demoauth.Password})
	resp := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	for deadline := time.Now().Add(time.Minute); resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		resp = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	}
	var login struct {
		LoginToken string `json:"login_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(resp.Envelope(t).Data, &login) != nil || login.LoginToken == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Body)
	}
	return login.LoginToken
}

// checkSessionCookies checks the three cookies of a cookie-mode answer and
// that its body carries no token.
func checkSessionCookies(t *testing.T, resp *httpt.Response) (csrf string) {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", resp.Request.URL.Path, resp.StatusCode, resp.Body)
	}
	var data map[string]any
	if err := json.Unmarshal(resp.Envelope(t).Data, &data); err != nil {
		t.Fatal(err)
	}
	if _, has := data["access_token"]; has {
		t.Fatalf("cookie mode answered the access token in the body: %s", resp.Body)
	}
	if _, has := data["refresh_token"]; has {
		t.Fatalf("cookie mode answered the refresh token in the body: %s", resp.Body)
	}
	if data["cookie"] != true {
		t.Fatalf("no cookie: true in %s", resp.Body)
	}
	got := map[string]*http.Cookie{}
	for _, c := range resp.Cookies() {
		got[c.Name] = c
	}
	for name, httpOnly := range map[string]bool{"__Host-erp_at": true, "__Host-erp_rt": true, "__Host-erp_csrf": false} {
		c := got[name]
		if c == nil || c.Value == "" {
			t.Fatalf("no %s cookie: %v", name, resp.Header.Values("Set-Cookie"))
		}
		if !c.Secure || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteStrictMode || c.HttpOnly != httpOnly || c.MaxAge <= 0 {
			t.Fatalf("%s: attributes %q (want Secure, Path=/, no Domain, SameSite=Strict, HttpOnly=%v, Max-Age>0)", name, c.Raw, httpOnly)
		}
	}
	if exp, _ := data["expires_in"].(float64); int(exp) != got["__Host-erp_at"].MaxAge {
		t.Fatalf("__Host-erp_at Max-Age %d, expires_in %v", got["__Host-erp_at"].MaxAge, data["expires_in"])
	}
	if data["csrf_token"] != got["__Host-erp_csrf"].Value {
		t.Fatalf("csrf_token %v is not the __Host-erp_csrf cookie %q", data["csrf_token"], got["__Host-erp_csrf"].Value)
	}
	return got["__Host-erp_csrf"].Value
}

func start(t *testing.T) *stacktest.Instance {
	t.Helper()
	return stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
}

func TestBrowser(t *testing.T) {
	in := start(t)
	origin := in.URL // stacktest's ERP_PUBLIC_URL, the request's own origin too

	t.Run("cookie mode", func(t *testing.T) {
		j := newJar(t)
		sel := j.do(http.MethodPost, in.URL+"/api/v1/auth/select-company",
			httpt.JSON(t, map[string]any{"login_token": loginToken(t, in.URL), "company_id": "acme", "cookie": true}), nil)
		csrf := checkSessionCookies(t, sel)

		// a safe method needs the cookie only
		if r := j.do(http.MethodGet, in.URL+"/api/v1/customers?limit=2", nil, nil); r.StatusCode != 200 || r.Envelope(t).Meta.CompanyID != "acme" {
			t.Fatalf("GET with the cookie: %d %s", r.StatusCode, r.Body)
		}
		if r := httpt.Get(t, in.URL+"/api/v1/customers?limit=2", nil); r.StatusCode != 401 {
			t.Fatalf("GET without the cookie: %d %s", r.StatusCode, r.Body)
		}

		create := []byte(`{"name":"Initech","email":"ap@initech.test"}`)
		refused := func(what string, h map[string]string, wantMsg string) {
			t.Helper()
			r := j.do(http.MethodPost, in.URL+"/api/v1/customers", create, h)
			env := r.Envelope(t)
			if r.StatusCode != 403 || env.Code() != "FORBIDDEN" || !strings.Contains(env.Errors[0].Message, wantMsg) {
				t.Fatalf("POST %s: want 403 FORBIDDEN (%q), got %d %s", what, wantMsg, r.StatusCode, r.Body)
			}
		}
		refused("without X-CSRF-Token", map[string]string{"Origin": origin}, "X-CSRF-Token")
		refused("with a wrong X-CSRF-Token", map[string]string{"Origin": origin, "X-CSRF-Token": csrf + "x"}, "X-CSRF-Token")
		refused("from another Origin", map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": csrf}, "Origin")
		refused("without Origin or Referer", map[string]string{"X-CSRF-Token": csrf}, "Origin")
		r := j.do(http.MethodPost, in.URL+"/api/v1/customers", create, map[string]string{"Origin": origin, "X-CSRF-Token": csrf})
		if r.StatusCode != 201 {
			t.Fatalf("POST with Origin and X-CSRF-Token: %d %s", r.StatusCode, r.Body)
		}
		// a Referer of an allowed origin stands for a missing Origin
		r = j.do(http.MethodPost, in.URL+"/api/v1/customers", create, map[string]string{"Referer": origin + "/app/page", "X-CSRF-Token": csrf})
		if r.StatusCode != 201 {
			t.Fatalf("POST with Referer and X-CSRF-Token: %d %s", r.StatusCode, r.Body)
		}

		// refresh reads the refresh token from its cookie, after the same check
		oldAT, oldRT := j.value("__Host-erp_at"), j.value("__Host-erp_rt")
		if r := j.do(http.MethodPost, in.URL+"/api/v1/auth/refresh", []byte(`{"cookie":true}`), map[string]string{"Origin": origin}); r.StatusCode != 403 {
			t.Fatalf("refresh without X-CSRF-Token: %d %s", r.StatusCode, r.Body)
		}
		ref := j.do(http.MethodPost, in.URL+"/api/v1/auth/refresh", []byte(`{"cookie":true}`), map[string]string{"Origin": origin, "X-CSRF-Token": csrf})
		csrf2 := checkSessionCookies(t, ref)
		if j.value("__Host-erp_at") == oldAT || j.value("__Host-erp_rt") == oldRT || csrf2 == csrf {
			t.Fatal("refresh did not replace the cookies")
		}
		if r := j.do(http.MethodGet, in.URL+"/api/v1/customers?limit=1", nil, nil); r.StatusCode != 200 {
			t.Fatalf("GET with the refreshed cookie: %d %s", r.StatusCode, r.Body)
		}

		// switch-company in cookie mode (through the auth service's own check)
		sw := j.do(http.MethodPost, in.URL+"/api/v1/auth/switch-company", []byte(`{"company_id":"globex","cookie":true}`), map[string]string{"Origin": origin, "X-CSRF-Token": csrf2})
		csrf3 := checkSessionCookies(t, sw)
		if r := j.do(http.MethodGet, in.URL+"/api/v1/customers?limit=1", nil, nil); r.StatusCode != 200 || r.Envelope(t).Meta.CompanyID != "globex" {
			t.Fatalf("GET after switch-company: %d %s", r.StatusCode, r.Body)
		}

		// logout (an unsafe method: the check again) clears the cookies
		if r := j.do(http.MethodPost, in.URL+"/api/v1/auth/logout", nil, map[string]string{"Origin": origin}); r.StatusCode != 403 {
			t.Fatalf("logout without X-CSRF-Token: %d %s", r.StatusCode, r.Body)
		}
		at := j.value("__Host-erp_at")
		lo := j.do(http.MethodPost, in.URL+"/api/v1/auth/logout", nil, map[string]string{"Origin": origin, "X-CSRF-Token": csrf3})
		if lo.StatusCode != 200 {
			t.Fatalf("logout: %d %s", lo.StatusCode, lo.Body)
		}
		if len(j.cookies) != 0 {
			t.Fatalf("logout left cookies: %v", lo.Header.Values("Set-Cookie"))
		}
		// the session is over for the old cookie too (revocation reaches the edge)
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := httpt.Get(t, in.URL+"/api/v1/customers?limit=1", map[string]string{"Cookie": "__Host-erp_at=" + at})
			if r.StatusCode == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the logged-out cookie still works: %d %s", r.StatusCode, r.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("bearer unaffected", func(t *testing.T) {
		tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
		r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/customers", []byte(`{"name":"Hooli","email":"ap@hooli.test"}`),
			map[string]string{"Authorization": "Bearer " + tok.Access, "Origin": "https://evil.example"})
		if r.StatusCode != 201 {
			t.Fatalf("bearer POST from any origin without X-CSRF-Token: %d %s", r.StatusCode, r.Body)
		}
		// a bearer token and a cookie: the header is the credential (a
		// cookie of another company's session is not read)
		j := newJar(t)
		j.do(http.MethodPost, in.URL+"/api/v1/auth/select-company",
			httpt.JSON(t, map[string]any{"login_token": loginToken(t, in.URL), "company_id": "globex", "cookie": true}), nil)
		r = j.do(http.MethodPost, in.URL+"/api/v1/customers", []byte(`{"name":"Hooli","email":"ap@hooli.test"}`), map[string]string{"Authorization": "Bearer " + tok.Access})
		if r.StatusCode != 201 || r.Envelope(t).Meta.CompanyID != "acme" {
			t.Fatalf("bearer with a cookie: %d %s", r.StatusCode, r.Body)
		}
		// select-company without cookie mode still answers the tokens
		if tok.Refresh == "" {
			t.Fatal("select-company without cookie: no refresh_token")
		}
	})

	t.Run("compression and headers", func(t *testing.T) {
		tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
		get := func(enc string) (*http.Response, []byte) {
			req, _ := http.NewRequest(http.MethodGet, in.URL+"/api/v1/customers?limit=25", nil)
			req.Header.Set("Authorization", "Bearer "+tok.Access)
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		plainResp, plain := get("")
		if plainResp.StatusCode != 200 || plainResp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("identity: %d %q", plainResp.StatusCode, plainResp.Header.Get("Content-Encoding"))
		}
		for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy"} {
			want := map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}[h]
			if got := plainResp.Header.Get(h); got != want {
				t.Fatalf("%s: %q, want %q", h, got, want)
			}
		}
		if v := plainResp.Header.Values("X-Content-Type-Options"); len(v) != 1 {
			t.Fatalf("X-Content-Type-Options %q: the backend's copy was not replaced", v)
		}
		if plainResp.Header.Get("Strict-Transport-Security") != "" {
			t.Fatal("HSTS on an http:// site")
		}
		// an error answer (the envelope's) carries them too
		if r := httpt.Get(t, in.URL+"/api/v1/customers", nil); r.StatusCode != 401 || r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("401 answer's headers: %d %v", r.StatusCode, r.Header)
		}
		for _, enc := range []string{"gzip", "zstd"} {
			resp, body := get(enc)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != enc {
				t.Fatalf("Accept-Encoding %s: %d Content-Encoding %q", enc, resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			if len(body) >= len(plain) {
				t.Fatalf("%s: %d bytes, not smaller than %d", enc, len(body), len(plain))
			}
			var rd io.Reader
			switch enc {
			case "gzip":
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				rd = zr
			case "zstd":
				zr, err := zstd.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer zr.Close()
				rd = zr
			}
			dec, err := io.ReadAll(rd)
			if err != nil {
				t.Fatalf("%s: decode: %v", enc, err)
			}
			if a, b := dataOf(t, dec), dataOf(t, plain); a != b {
				t.Fatalf("%s: decoded data differs:\n%s\n%s", enc, a, b)
			}
		}
	})
}

// dataOf is an envelope's data and pagination (meta differs per request).
func dataOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Success    bool            `json:"success"`
		Data       json.RawMessage `json:"data"`
		Pagination json.RawMessage `json:"pagination"`
	}
	if err := json.Unmarshal(body, &e); err != nil || !e.Success {
		t.Fatalf("not a successful envelope (%v): %.300s", err, body)
	}
	return string(e.Data) + string(e.Pagination)
}
