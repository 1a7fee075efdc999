package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestSSOOIDC drives enterprise sign-in through the running binary
// (Postgres and Redis) against a real OpenID provider (zitadel/oidc's op
// package, its example storage and login page) in this process: a
// browser with a cookie jar goes from the start URL through the
// provider's login form back to the callback, and ends with a login token
// that select-company takes. The refusals the provider can be made to
// produce (state, replay, domain, removed membership) are here; the ones
// it can't (nonce, another signing key, another audience, expiry, and
// email_verified false, which its userinfo omits) are in authsvc's
// package tests against a fake IdP (authsvc/sso_oidc_test.go).
func TestSSOOIDC(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(stacktest.FreePort(t))
	public := "http://127.0.0.1:" + port
	idp := ssoStartOIDCProvider(t, public, []string{"dana@acme-idp.test", "alice@acme.test", "eve@elsewhere.test"})
	pgURL := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_LISTEN": "127.0.0.1:" + port, "ERP_PUBLIC_URL": public, "ERP_SSO_ALLOW_PRIVATE": "1",
		"ERP_POSTGRES_URL": pgURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
	}})
	base := in.URL
	root := demoauth.Login(t, base, "root@erpgate.local", "acme").Access
	rootH := demoauth.Bearer(root)

	// The connection, created by the platform admin.
	r := httpt.Do(t, "POST", base+"/api/v1/admin/companies/acme/sso", httpt.JSON(t, map[string]any{
		"kind": "oidc", "name": "Acme IdP", "domains": []string{"acme-idp.test", "acme.test"}, "jit": true, "default_role": "accountant",
		"oidc": map[string]any{"issuer": idp.Issuer, "client_id": idp.ClientID, "client_secret": idp.ClientSecret},
	}), rootH)
	env := ssoDecode(t, r.Body)
	var conn struct {
		ID       string `json:"id"`
		StartURL string `json:"start_url"`
		OIDC     struct {
			ClientSecretSet bool `json:"client_secret_set"`
		} `json:"oidc"`
	}
	if r.StatusCode != 201 || json.Unmarshal(env.Data, &conn) != nil || !conn.OIDC.ClientSecretSet || strings.Contains(string(r.Body), idp.ClientSecret) ||
		conn.StartURL != public+"/api/v1/auth/sso/acme/start?connection="+conn.ID {
		t.Fatalf("create connection: %d %s", r.StatusCode, r.Body)
	}
	var codes []string // every code the provider issued: never in the logs
	noteCode := func(callback string) {
		u, err := url.Parse(callback)
		if err == nil && u.Query().Get("code") != "" {
			codes = append(codes, u.Query().Get("code"))
		}
	}
	// refusedWith checks a 401 and its audit record's reason.
	refusedWith := func(t *testing.T, status int, body []byte, reason string) {
		t.Helper()
		e := ssoDecode(t, body)
		if status != 401 || len(e.Errors) != 1 || e.Errors[0].Code != "UNAUTHENTICATED" || strings.Contains(string(body), "login_token") {
			t.Fatalf("want 401 UNAUTHENTICATED, got %d %s", status, body)
		}
		a := httpt.Get(t, base+"/api/v1/admin/audit?type=sso.refused&limit=100", rootH)
		var evs []struct {
			RequestID string            `json:"request_id"`
			Details   map[string]string `json:"details"`
		}
		if err := json.Unmarshal(ssoDecode(t, a.Body).Data, &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.RequestID == e.Meta.RequestID {
				if ev.Details["reason"] != reason {
					t.Fatalf("refused for %q, want %q", ev.Details["reason"], reason)
				}
				return
			}
		}
		t.Fatalf("no audit record of the refusal %s", e.Meta.RequestID)
	}

	t.Run("JIT sign-in ends in a company token", func(t *testing.T) {
		b := newSSOBrowser(t)
		jar := b.client.Jar
		startU, _ := url.Parse(public + "/api/v1/auth/sso/callback")
		end, callback := b.signIn(t, idp, conn.StartURL, "dana@acme-idp.test")
		noteCode(callback)
		e := ssoDecode(t, end.body)
		var login struct {
			LoginToken  string `json:"login_token"`
			MFARequired bool   `json:"mfa_required"`
			User        struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		if end.status != 200 || json.Unmarshal(e.Data, &login) != nil || login.LoginToken == "" || login.MFARequired || login.User.Email != "dana@acme-idp.test" {
			t.Fatalf("callback: %d %s", end.status, end.body)
		}
		sel := httpt.Do(t, "POST", base+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": login.LoginToken, "company_id": "acme"}), nil)
		var tok struct {
			AccessToken string `json:"access_token"`
			Company     struct {
				Roles []string `json:"roles"`
			} `json:"company"`
		}
		if sel.StatusCode != 200 || json.Unmarshal(ssoDecode(t, sel.Body).Data, &tok) != nil || tok.AccessToken == "" ||
			len(tok.Company.Roles) != 1 || tok.Company.Roles[0] != "accountant" {
			t.Fatalf("select-company: %d %s", sel.StatusCode, sel.Body)
		}
		if me := httpt.Get(t, base+"/api/v1/auth/me", demoauth.Bearer(tok.AccessToken)); me.StatusCode != 200 {
			t.Fatalf("me: %d %s", me.StatusCode, me.Body)
		}
		if left := jar.Cookies(startU); len(left) != 0 {
			t.Fatalf("the flow cookie outlived the callback: %v", left)
		}
	})

	t.Run("state", func(t *testing.T) {
		b := newSSOBrowser(t)
		form := b.get(t, conn.StartURL) // the provider's login page; the flow cookie is set
		if form.status != 200 {
			t.Fatalf("start: %d", form.status)
		}
		cbURL, _ := url.Parse(public + "/api/v1/auth/sso/callback")
		cookies := b.client.Jar.Cookies(cbURL)
		if len(cookies) != 1 || !strings.HasPrefix(cookies[0].Name, "erp_sso_") {
			t.Fatalf("flow cookies: %v", cookies)
		}
		// missing state, a state of no flow (another browser's), no cookie
		for _, q := range []string{"code=x", "code=x&state=" + strings.Repeat("A", 43)} {
			p := b.get(t, public+"/api/v1/auth/sso/callback?"+q)
			refusedWith(t, p.status, p.body, "state_invalid")
		}
		// the whole flow, then the same callback again with the same cookie: replayed
		m := ssoAuthRequestID.FindSubmatch(form.body)
		resp, err := b.client.PostForm(idp.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {"alice@acme.test"}, "password": {ssoOIDCPassword}})
		if err != nil {
			t.Fatal(err)
		}
		end := ssoRead(t, resp)
		if end.status != 200 {
			t.Fatalf("sign-in: %d %s", end.status, end.body)
		}
		var callback string
		for _, v := range b.visited {
			if strings.Contains(v, "/api/v1/auth/sso/callback?") {
				callback = v
			}
		}
		noteCode(callback)
		req, _ := http.NewRequest("GET", callback, nil)
		req.AddCookie(cookies[0])
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		p := ssoRead(t, again)
		refusedWith(t, p.status, p.body, "state_replayed")
	})

	t.Run("return_to carries the answer in the fragment", func(t *testing.T) {
		b := newSSOBrowser(t)
		end, callback := b.signIn(t, idp, conn.StartURL+"&return_to=/login", "alice@acme.test")
		noteCode(callback)
		loc := end.header.Get("Location")
		const prefix = "/login#sso_result="
		if end.status != 302 || !strings.HasPrefix(loc, public+prefix) {
			t.Fatalf("callback: %d Location %q", end.status, loc)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(loc, public+prefix))
		var res struct {
			LoginToken string `json:"login_token"`
			Companies  []struct {
				ID string `json:"id"`
			} `json:"companies"`
		}
		if err != nil || json.Unmarshal(raw, &res) != nil || res.LoginToken == "" || len(res.Companies) == 0 {
			t.Fatalf("sso_result %q: %v", raw, err)
		}
	})

	t.Run("a domain that is not the connection's", func(t *testing.T) {
		end, callback := newSSOBrowser(t).signIn(t, idp, conn.StartURL, "eve@elsewhere.test")
		noteCode(callback)
		refusedWith(t, end.status, end.body, "domain_not_allowed")
	})

	t.Run("company admins see and change their own company's only", func(t *testing.T) {
		alice := demoauth.Bearer(demoauth.Login(t, base, "alice@acme.test", "acme").Access) // acme admin
		g := httpt.Do(t, "POST", base+"/api/v1/admin/companies/globex/sso", httpt.JSON(t, map[string]any{
			"kind": "oidc", "name": "Globex IdP", "domains": []string{"globex.test"}, "required": true,
			"oidc": map[string]any{"issuer": idp.Issuer, "client_id": idp.ClientID, "client_secret": idp.ClientSecret},
		}), rootH)
		var gconn struct {
			ID      string `json:"id"`
			SSOURL  string `json:"start_url"`
			Domains []string
		}
		if g.StatusCode != 201 || json.Unmarshal(ssoDecode(t, g.Body).Data, &gconn) != nil {
			t.Fatalf("globex connection: %d %s", g.StatusCode, g.Body)
		}
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/api/v1/admin/companies/globex/sso", 403},
			{"GET", "/api/v1/admin/companies/globex/sso/" + gconn.ID, 403},
			{"DELETE", "/api/v1/admin/companies/globex/sso/" + gconn.ID, 403},
			{"GET", "/api/v1/admin/companies/acme/sso/" + gconn.ID, 404},
			{"DELETE", "/api/v1/admin/companies/acme/sso/" + gconn.ID, 404},
			{"GET", "/api/v1/admin/companies/acme/sso/" + conn.ID, 200},
		} {
			r := httpt.Do(t, c.method, base+c.path, nil, alice)
			if r.StatusCode != c.status || strings.Contains(string(r.Body), idp.ClientSecret) {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.StatusCode, r.Body)
			}
		}
		if r := httpt.Get(t, base+"/api/v1/admin/companies/globex/sso/"+gconn.ID, rootH); r.StatusCode != 200 {
			t.Fatalf("globex connection survived: %d %s", r.StatusCode, r.Body)
		}

		// SSO required for globex.test: the password is never checked.
		for _, pw := range []string{demoauth.Password, "not-the-password"} {
			l := httpt.Do(t, "POST", base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "bob@globex.test", "password": pw}), nil)
			var ans struct {
				SSORequired bool   `json:"sso_required"`
				SSOURL      string `json:"sso_url"`
				CompanyID   string `json:"company_id"`
				LoginToken  string `json:"login_token"`
			}
			if l.StatusCode != 200 || json.Unmarshal(ssoDecode(t, l.Body).Data, &ans) != nil || !ans.SSORequired || ans.LoginToken != "" ||
				ans.SSOURL != public+"/api/v1/auth/sso/globex/start?connection="+gconn.ID || ans.CompanyID != "globex" {
				t.Fatalf("login of bob with %q: %d %s", pw, l.StatusCode, l.Body)
			}
		}
	})

	t.Run("a member removed by an admin is not let back in", func(t *testing.T) {
		d := httpt.Do(t, "DELETE", base+"/api/v1/admin/memberships/acme/alice@acme.test", nil, rootH)
		if d.StatusCode != 200 {
			t.Fatalf("remove membership: %d %s", d.StatusCode, d.Body)
		}
		end, callback := newSSOBrowser(t).signIn(t, idp, conn.StartURL, "alice@acme.test")
		noteCode(callback)
		refusedWith(t, end.status, end.body, "not_member")
	})

	t.Run("secrets at rest and in logs", func(t *testing.T) {
		ctx := context.Background()
		db, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(ctx)
		var sealed []byte
		var row string
		if err := db.QueryRow(ctx, `SELECT sealed_client_secret, row_to_json(c)::text FROM sso_connections c WHERE id = $1`, conn.ID).Scan(&sealed, &row); err != nil {
			t.Fatal(err)
		}
		if len(sealed) <= len(idp.ClientSecret) || strings.Contains(string(sealed), idp.ClientSecret) || strings.Contains(row, idp.ClientSecret) {
			t.Fatalf("the client secret is not sealed at rest: %q", row)
		}
		var audit string
		if err := db.QueryRow(ctx, `SELECT coalesce(string_agg(row_to_json(a)::text, ' '), '') FROM audit_events a`).Scan(&audit); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(audit, idp.ClientSecret) {
			t.Fatal("the client secret is in the audit trail")
		}
		if len(codes) < 4 {
			t.Fatalf("only %d codes seen", len(codes))
		}
		logs := in.Logs()
		if strings.Contains(logs, idp.ClientSecret) {
			t.Fatal("the client secret is in the logs")
		}
		for _, c := range append(codes, idp.ClientSecret) {
			if strings.Contains(logs, c) || strings.Contains(audit, c) {
				t.Fatalf("an authorization code is in the logs or the audit trail: %s", c)
			}
		}
	})
}
