// Package statuses shows, against the running binary, that a request a
// dependency outage keeps from being decided is answered 503
// SERVICE_UNAVAILABLE with Retry-After — never 500 INTERNAL, never a 401 —
// and works again once the dependency is back, without a restart.
//
// Faults are injected by the test: Postgres and Redis are reached through
// private TCP proxies (internal/faultproxy) that the test cuts and
// restores; each test has its own database and Redis key prefix.
package statuses

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/faultproxy"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/testenv"
)

// deps are the test's own database and key prefix, reached through proxies.
type deps struct {
	pg, rd           *faultproxy.Proxy
	postgresURL      string // through pg
	redisURL, prefix string // through rd
}

func newDeps(t *testing.T) *deps {
	t.Helper()
	d := &deps{}
	db, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	d.pg = faultproxy.Start(t, db.Host)
	db.Host = d.pg.Addr()
	q := db.Query()
	q.Set("connect_timeout", "2") // a cut proxy refuses at once; this only bounds the worst case
	db.RawQuery = q.Encode()
	d.postgresURL = db.String()

	rawRedis, prefix := testenv.Redis(t)
	rd, err := url.Parse(rawRedis)
	if err != nil {
		t.Fatal(err)
	}
	d.rd = faultproxy.Start(t, rd.Host)
	rd.Host = d.rd.Addr()
	d.redisURL, d.prefix = rd.String(), prefix
	return d
}

// env is the gateway's environment for d.
func (d *deps) env() map[string]string {
	return map[string]string{"ERP_POSTGRES_URL": d.postgresURL, "ERP_REDIS_URL": d.redisURL, "ERP_KEY_PREFIX": d.prefix}
}

// check is one request of an endpoint family; it is sent again, unchanged,
// after the dependency is restored.
type check struct {
	name string
	do   func(t *testing.T) *httpt.Response
}

// expectUnavailable: 503, Retry-After, SERVICE_UNAVAILABLE in an envelope.
func expectUnavailable(t *testing.T, c check) {
	t.Helper()
	r := c.do(t)
	env := r.Envelope(t)
	if r.StatusCode != http.StatusServiceUnavailable || env.Code() != "SERVICE_UNAVAILABLE" {
		t.Errorf("%s: got %d %s, want 503 SERVICE_UNAVAILABLE: %.300s", c.name, r.StatusCode, env.Code(), r.Body)
		return
	}
	ra := r.Header.Get("Retry-After")
	if n, err := strconv.Atoi(ra); err != nil || n < 1 {
		t.Errorf("%s: 503 with Retry-After %q, want a number of seconds", c.name, ra)
	}
	if ra != depfail.RetryAfter {
		t.Errorf("%s: Retry-After %q, want the documented %s", c.name, ra, depfail.RetryAfter)
	}
}

// expectWorks: a 2xx within a bounded number of tries (a pool may need one
// failed call to notice its connections are gone).
func expectWorks(t *testing.T, c check) {
	t.Helper()
	var r *httpt.Response
	for deadline := time.Now().Add(20 * time.Second); ; {
		r = c.do(t)
		if r.StatusCode/100 == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: still %d after the dependency was restored: %.300s", c.name, r.StatusCode, r.Body)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// expectStatus: exactly status, enveloped.
func expectStatus(t *testing.T, c check, status int) {
	t.Helper()
	r := c.do(t)
	r.Envelope(t)
	if r.StatusCode != status {
		t.Errorf("%s: got %d, want %d: %.300s", c.name, r.StatusCode, status, r.Body)
	}
}

func post(base, path string, body any, header map[string]string) func(t *testing.T) *httpt.Response {
	return func(t *testing.T) *httpt.Response {
		return httpt.Do(t, http.MethodPost, base+path, httpt.JSON(t, body), header)
	}
}

func get(base, path string, header map[string]string) func(t *testing.T) *httpt.Response {
	return func(t *testing.T) *httpt.Response { return httpt.Get(t, base+path, header) }
}

// loginToken is the first step of a login (before select-company).
func loginToken(t *testing.T, base, email string) string {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": email, "password": demoauth.Password}), nil)
	var out struct {
		LoginToken string `json:"login_token"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Envelope(t).Data, &out) != nil || out.LoginToken == "" {
		t.Fatalf("login %s: %d %s", email, r.StatusCode, r.Body)
	}
	return out.LoginToken
}

// apiKey creates an API key for access.
func apiKey(t *testing.T, base, access string) string {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/api-keys", httpt.JSON(t, map[string]any{"name": "statuses", "scope": []string{"invoices:read"}}), demoauth.Bearer(access))
	var k struct {
		Key string `json:"key"`
	}
	if r.StatusCode/100 != 2 || json.Unmarshal(r.Envelope(t).Data, &k) != nil || k.Key == "" {
		t.Fatalf("create API key: %d %s", r.StatusCode, r.Body)
	}
	return k.Key
}

// authChecks (login and select-company first: needRedis relies on the
// order) are the auth service's endpoint families that need the store:
// login, select-company, refresh, /me (its session), an admin list. The
// tokens are taken before the outage; the same requests are sent again
// after it (nothing was consumed while the store was unreachable).
func authChecks(t *testing.T, base string) []check {
	t.Helper()
	alice := demoauth.Login(t, base, "alice@acme.test", "acme")
	root := demoauth.Login(t, base, "root@erpgate.local", "acme")
	lt := loginToken(t, base, "alice@acme.test")
	return []check{
		{"login", post(base, "/api/v1/auth/login", map[string]string{"email": "bob@globex.test", "password": demoauth.Password}, nil)},
		{"select-company", post(base, "/api/v1/auth/select-company", map[string]string{"login_token": lt, "company_id": "acme"}, nil)},
		{"refresh", post(base, "/api/v1/auth/refresh", map[string]string{"refresh_token": alice.Refresh}, nil)},
		{"me", get(base, "/api/v1/auth/me", demoauth.Bearer(alice.Access))},
		{"admin users", get(base, "/api/v1/admin/users", demoauth.Bearer(root.Access))},
		{"admin companies", get(base, "/api/v1/admin/companies", demoauth.Bearer(root.Access))},
	}
}
