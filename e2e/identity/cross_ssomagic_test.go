package identity_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestMagicLinkSSORequiredDomain: once a company requires SSO for a domain,
// a magic link is no way around it: a new request is answered as any other
// (202) but nothing is mailed (audited magic_link.suppressed, sso_required),
// and a link mailed before the switch no longer signs in.
func TestMagicLinkSSORequiredDomain(t *testing.T) {
	t.Parallel()
	mp := testenv.NewMailpit(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: map[string]string{
		"ERP_POSTGRES_URL": testenv.Postgres(t), "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_NATS_URL": testenv.NATSURL(t), "ERP_MASTER_KEY": msgMasterKey,
		"ERP_SMTP_URL": testenv.SMTPURL(t), "ERP_SSO_ALLOW_PRIVATE": "1",
	}})
	idp := ssoStartOIDCProvider(t, in.Env["ERP_PUBLIC_URL"], nil)
	root := demoauth.Bearer(demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access)
	domain := strings.ReplaceAll(testenv.Name(), "_", "-") + ".test"
	email := "pat@" + domain

	u := httpt.Do(t, "POST", in.URL+"/api/v1/admin/users", httpt.JSON(t, map[string]any{"email": email, "password": msgPassword}), root)
	var user struct {
		ID string `json:"id"`
	}
	if u.StatusCode != 201 || json.Unmarshal(u.Envelope(t).Data, &user) != nil {
		t.Fatalf("create user: %d %s", u.StatusCode, u.Body)
	}
	if m := httpt.Do(t, "PUT", in.URL+"/api/v1/admin/memberships/acme/"+user.ID, httpt.JSON(t, map[string]any{"roles": []string{"viewer"}}), root); m.StatusCode/100 != 2 {
		t.Fatalf("membership: %d %s", m.StatusCode, m.Body)
	}
	magic := func() {
		t.Helper()
		a := httpt.Do(t, "POST", in.URL+"/api/v1/auth/magic-link", httpt.JSON(t, map[string]any{"email": email}), nil)
		if a.StatusCode != http.StatusAccepted {
			t.Fatalf("magic link: %d %s", a.StatusCode, a.Body)
		}
	}
	// Before: the link is mailed.
	magic()
	link := msgLinkRE.FindStringSubmatch(mp.WaitFor(t, email, 1).Text)
	if link == nil {
		t.Fatal("no link in the mail")
	}

	c := httpt.Do(t, "POST", in.URL+"/api/v1/admin/companies/acme/sso", httpt.JSON(t, map[string]any{
		"kind": "oidc", "name": "Acme IdP", "domains": []string{domain}, "required": true,
		"oidc": map[string]any{"issuer": idp.Issuer, "client_id": idp.ClientID, "client_secret": idp.ClientSecret},
	}), root)
	if c.StatusCode != 201 {
		t.Fatalf("connection: %d %s", c.StatusCode, c.Body)
	}

	// After: the same answer, no mail, an audit record saying why.
	magic()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := httpt.Get(t, in.URL+"/api/v1/admin/audit?type=magic_link.suppressed&limit=100", root)
		var evs []struct {
			Details map[string]string `json:"details"`
		}
		if err := json.Unmarshal(a.Envelope(t).Data, &evs); err != nil {
			t.Fatalf("audit: %d %s", a.StatusCode, a.Body)
		}
		found := false
		for _, ev := range evs {
			found = found || ev.Details["reason"] == "sso_required"
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no magic_link.suppressed record with reason sso_required: %s", a.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := mp.Count(t, email); n != 1 {
		t.Fatalf("%d mails to an SSO-required address, want the 1 from before", n)
	}
	// The link from before the switch does not sign in.
	v := httpt.Do(t, "POST", in.URL+"/api/v1/auth/magic-link/verify", httpt.JSON(t, map[string]any{"token": link[2]}), nil)
	if v.StatusCode != http.StatusUnauthorized || strings.Contains(string(v.Body), "login_token") {
		t.Fatalf("an earlier link after SSO became required: %d %s", v.StatusCode, v.Body)
	}
	// Nor does the password: the login answers with the SSO start.
	l := httpt.Do(t, "POST", in.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]any{"email": email, "password": msgPassword}), nil)
	if l.StatusCode != 200 || !strings.Contains(string(l.Body), `"sso_required":true`) || strings.Contains(string(l.Body), "login_token") {
		t.Fatalf("password login: %d %s", l.StatusCode, l.Body)
	}
}
