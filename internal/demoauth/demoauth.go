// Package demoauth logs demo users in through a running gateway's auth
// service, for whole-stack tests. It owns no state; of ours it imports only
// internal/httpt, and no Caddy (it talks HTTP to the binary).
package demoauth

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
)

// Password of every demo user.
const Password = "erpgate-demo"

// Tokens are what select-company answers.
type Tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// Login logs email in and selects company; it fails the test on any error.
// A 503 (the auth service still starting: seeding hashes passwords, which
// is slow under the race detector) is retried for up to a minute.
func Login(t testing.TB, base, email, company string) Tokens {
	t.Helper()
	body := httpt.JSON(t, map[string]string{"email": email, "password": Password})
	resp := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	for deadline := time.Now().Add(time.Minute); resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		resp = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	}
	env := resp.Envelope(t)
	var login struct {
		LoginToken string `json:"login_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(env.Data, &login) != nil || login.LoginToken == "" {
		t.Fatalf("login %s: %d %s", email, resp.StatusCode, resp.Body)
	}
	resp = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": login.LoginToken, "company_id": company}), nil)
	env = resp.Envelope(t)
	var tok Tokens
	if resp.StatusCode != 200 || json.Unmarshal(env.Data, &tok) != nil || tok.Access == "" {
		t.Fatalf("select-company %s/%s: %d %s", email, company, resp.StatusCode, resp.Body)
	}
	return tok
}

// Bearer is the Authorization header of an access token.
func Bearer(access string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + access}
}
