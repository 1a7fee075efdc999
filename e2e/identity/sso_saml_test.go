package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestSSOSAML drives SAML sign-in through the running binary (Postgres and
// Redis) against a real SAML IdP (crewjam/saml's samlidp) in this process:
// the connection made by the admin API from the IdP's metadata URL, the
// SP registered at the IdP by the metadata the gateway serves, a browser
// from the start through the IdP's login form and its auto-posted
// Response to the ACS, ending in a login token that select-company takes.
// Refusals: a replayed Response, an expired assertion (an IdP whose clock
// is late), a Response signed by another key (an impostor IdP with the
// real one's name), an assertion for another SP, an email domain that is
// not the connection's, a removed membership, a forged RelayState, another
// browser. The package tests (authsvc/saml_internal_test.go) cover the
// rest (malformed posts, InResponseTo of another flow, metadata checks).
func TestSSOSAML(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(stacktest.FreePort(t))
	public := "http://127.0.0.1:" + port
	idpKey := samlNewIdPKey(t)
	idp := samlStartIdP(t, "", idpKey, 0, "carol@acme-saml.test", "eve@elsewhere.test", "frank@acme-saml.test")
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	pgURL := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_LISTEN": "127.0.0.1:" + port, "ERP_PUBLIC_URL": public, "ERP_SSO_ALLOW_PRIVATE": "1",
		"ERP_POSTGRES_URL": pgURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_MASTER_KEY": base64.StdEncoding.EncodeToString(master),
	}})
	base := in.URL
	rootH := demoauth.Bearer(demoauth.Login(t, base, "root@erpgate.local", "acme").Access)

	type connView struct {
		ID       string `json:"id"`
		StartURL string `json:"start_url"`
		ACSURL   string `json:"acs_url"`
	}
	create := func(company, domain string, clear bool) (connView, []byte) {
		t.Helper()
		r := httpt.Do(t, "POST", base+"/api/v1/admin/companies/"+company+"/sso", httpt.JSON(t, map[string]any{
			"kind": "saml", "name": company + " SAML", "domains": []string{domain}, "jit": true, "default_role": "accountant",
			"saml": map[string]any{"metadata_url": idp.url + "/metadata"},
		}), rootH)
		var c connView
		if r.StatusCode != 201 || json.Unmarshal(r.Envelope(t).Data, &c) != nil || c.ID == "" || c.ACSURL != public+"/api/v1/auth/sso/saml/acs" {
			t.Fatalf("create connection: %d %s", r.StatusCode, r.Body)
		}
		md := httpt.Get(t, base+"/api/v1/auth/sso/saml/metadata?company="+company+"&connection="+c.ID, nil)
		if md.StatusCode != 200 || md.Header.Get("Content-Type") != "application/samlmetadata+xml" || !strings.Contains(string(md.Body), "<EntityDescriptor") {
			t.Fatalf("SP metadata: %d %s", md.StatusCode, md.Body)
		}
		idp.register(t, c.ID, md.Body, clear)
		return c, md.Body
	}
	acme, acmeMD := create("acme", "acme-saml.test", false)
	if strings.Contains(string(acmeMD), "PRIVATE") {
		t.Fatal("the SP metadata holds a key")
	}

	// The SP key is sealed at rest under the master key.
	var sealed []byte
	ctx := context.Background()
	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	if err := pg.QueryRow(ctx, "SELECT sealed_sp_key FROM sso_connections WHERE id = $1", acme.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(sealed); err == nil {
		t.Fatal("the SP key is stored in the clear")
	}
	sealer, err := authsvc.NewSealer(master)
	if err != nil {
		t.Fatal(err)
	}
	spKey, err := sealer.Open("saml-sp-key", sealed)
	if err != nil {
		t.Fatalf("the SP key does not open under the master key: %v", err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(spKey); err != nil {
		t.Fatal(err)
	}

	var responses []string // every SAMLResponse: never in the logs
	post := func(b *http.Client, form url.Values) (int, httpt.Envelope, []byte) {
		t.Helper()
		responses = append(responses, form.Get("SAMLResponse"))
		st, _, body := samlRead(t)(b.PostForm(base+"/api/v1/auth/sso/saml/acs", form))
		var env httpt.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("ACS: not an envelope: %d %.300s", st, body)
		}
		return st, env, body
	}
	refusedWith := func(t *testing.T, st int, env httpt.Envelope, body []byte, reason string) {
		t.Helper()
		if st != 401 || env.Code() != "UNAUTHENTICATED" || strings.Contains(string(body), "login_token") || strings.Contains(string(body), "Assertion") {
			t.Fatalf("want 401 UNAUTHENTICATED, got %d %s", st, body)
		}
		a := httpt.Get(t, base+"/api/v1/admin/audit?type=sso.refused&limit=100", rootH)
		var evs []struct {
			RequestID string            `json:"request_id"`
			Details   map[string]string `json:"details"`
		}
		if err := json.Unmarshal(a.Envelope(t).Data, &evs); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.RequestID == env.Meta.RequestID {
				if ev.Details["reason"] != reason {
					t.Fatalf("refused for %q, want %q", ev.Details["reason"], reason)
				}
				return
			}
		}
		t.Fatalf("no audit record of the refusal %s", env.Meta.RequestID)
	}
	type loginAnswer struct {
		LoginToken  string `json:"login_token"`
		MFARequired bool   `json:"mfa_required"`
		User        struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
	}

	var carolID string
	t.Run("JIT sign-in ends in a company token; the Response replayed is refused", func(t *testing.T) {
		b := samlNewBrowser(t)
		action, form := samlAtIdP(t, b, idp, samlStart(t, b, acme.StartURL), "carol")
		if action != public+"/api/v1/auth/sso/saml/acs" {
			t.Fatalf("the IdP posts to %s", action)
		}
		st, env, body := post(b, form)
		var login loginAnswer
		if st != 200 || json.Unmarshal(env.Data, &login) != nil || login.LoginToken == "" || login.MFARequired || login.User.Email != "carol@acme-saml.test" {
			t.Fatalf("ACS: %d %s", st, body)
		}
		carolID = login.User.ID
		sel := httpt.Do(t, "POST", base+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": login.LoginToken, "company_id": "acme"}), nil)
		var tok struct {
			AccessToken string `json:"access_token"`
			Company     struct {
				Roles []string `json:"roles"`
			} `json:"company"`
		}
		if sel.StatusCode != 200 || json.Unmarshal(sel.Envelope(t).Data, &tok) != nil || tok.AccessToken == "" ||
			len(tok.Company.Roles) != 1 || tok.Company.Roles[0] != "accountant" {
			t.Fatalf("select-company: %d %s", sel.StatusCode, sel.Body)
		}
		if me := httpt.Get(t, base+"/api/v1/auth/me", demoauth.Bearer(tok.AccessToken)); me.StatusCode != 200 {
			t.Fatalf("me: %d %s", me.StatusCode, me.Body)
		}
		st, env, body = post(b, form)
		refusedWith(t, st, env, body, "saml_replayed")
	})

	t.Run("an email domain that is not the connection's", func(t *testing.T) {
		b := samlNewBrowser(t)
		_, form := samlAtIdP(t, b, idp, samlStart(t, b, acme.StartURL), "eve")
		st, env, body := post(b, form)
		refusedWith(t, st, env, body, "domain_not_allowed")
	})

	t.Run("an expired assertion", func(t *testing.T) {
		// The same IdP (name, key) with a clock 150 s late: it accepts the
		// request (within the 180 s skew), and its assertion was issued
		// longer ago than the 90 s an assertion may take to arrive.
		late := samlStartIdP(t, idp.url, idpKey, -150*time.Second, "frank@acme-saml.test")
		late.register(t, acme.ID, acmeMD, false)
		b := samlNewBrowser(t)
		_, form := samlAtIdP(t, b, late, samlStart(t, b, acme.StartURL), "frank")
		st, env, body := post(b, form)
		refusedWith(t, st, env, body, "saml_expired")
	})

	t.Run("a Response signed by another key", func(t *testing.T) {
		impostor := samlStartIdP(t, idp.url, samlNewIdPKey(t), 0, "frank@acme-saml.test")
		impostor.register(t, acme.ID, acmeMD, false)
		b := samlNewBrowser(t)
		_, form := samlAtIdP(t, b, impostor, samlStart(t, b, acme.StartURL), "frank")
		st, env, body := post(b, form)
		refusedWith(t, st, env, body, "saml_signature")
	})

	t.Run("an assertion for another SP", func(t *testing.T) {
		// globex's connection to the same IdP (its assertions unencrypted);
		// acme's AuthnRequest rewritten to name globex's SP: the IdP answers
		// acme's request id for globex's audience.
		globex, _ := create("globex", "globex-saml.test", true)
		b := samlNewBrowser(t)
		loc := samlStart(t, b, acme.StartURL)
		acmeEntity := public + "/api/v1/auth/sso/saml/metadata?company=acme&connection=" + acme.ID
		globexEntity := public + "/api/v1/auth/sso/saml/metadata?company=globex&connection=" + globex.ID
		_, form := samlAtIdP(t, b, idp, samlSwapIssuer(t, loc, acmeEntity, globexEntity), "frank")
		st, env, body := post(b, form)
		refusedWith(t, st, env, body, "saml_audience")
	})

	t.Run("a removed membership", func(t *testing.T) {
		if carolID == "" {
			t.Skip("the sign-in above failed")
		}
		r := httpt.Do(t, "DELETE", base+"/api/v1/admin/memberships/acme/"+carolID, nil, rootH)
		if r.StatusCode/100 != 2 {
			t.Fatalf("remove membership: %d %s", r.StatusCode, r.Body)
		}
		b := samlNewBrowser(t)
		_, form := samlAtIdP(t, b, idp, samlStart(t, b, acme.StartURL), "carol")
		st, env, body := post(b, form)
		refusedWith(t, st, env, body, "not_member")
	})

	t.Run("a forged RelayState, another browser", func(t *testing.T) {
		b := samlNewBrowser(t)
		_, form := samlAtIdP(t, b, idp, samlStart(t, b, acme.StartURL), "frank")
		forged := url.Values{"SAMLResponse": {form.Get("SAMLResponse")}, "RelayState": {"s1." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))}}
		st, env, body := post(b, forged)
		refusedWith(t, st, env, body, "state_invalid")
		st, env, body = post(samlNewBrowser(t), form)
		refusedWith(t, st, env, body, "saml_browser")
		// and the right browser still completes it
		if st, _, body := post(b, form); st != 200 {
			t.Fatalf("ACS: %d %s", st, body)
		}
	})

	t.Run("SP metadata of unknown connections", func(t *testing.T) {
		for q, want := range map[string]int{"": 422, "?connection=" + acme.ID: 422, "?company=acme&connection=00000000-0000-0000-0000-000000000000": 404,
			"?company=globex&connection=" + acme.ID: 404, "?company=acme&connection=not-a-uuid": 404} {
			if r := httpt.Get(t, base+"/api/v1/auth/sso/saml/metadata"+q, nil); r.StatusCode != want {
				t.Fatalf("%s: %d %s", q, r.StatusCode, r.Body)
			}
		}
	})

	logs := in.Logs()
	for _, secret := range append(responses, base64.StdEncoding.EncodeToString(spKey), base64.StdEncoding.EncodeToString(sealed)) {
		if len(secret) > 40 && strings.Contains(logs, secret[:40]) {
			t.Fatalf("the logs hold a SAMLResponse or the SP key")
		}
	}
}
