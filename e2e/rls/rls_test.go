// Package rls drives the gateway binary on Postgres with row-level
// security: the schema migrated by `gateway erp migrate` with the owner's
// URL, the service logged in as erpgate_app with a URL of its own; login,
// select-company, refresh, API keys and the platform admin's listings work
// through the edge, another company's rows stay out of reach, and every
// connection of the binary runs as erpgate_app.
package rls

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const masterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// asUser is u with the user name replaced.
func asUser(t *testing.T, u, user string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.User = url.User(user)
	return p.String()
}

// migrate runs `gateway erp migrate` with env and returns its output.
func migrate(t *testing.T, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stacktest.Binary(t), "erp", "migrate")
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRowLevelSecurity(t *testing.T) {
	ownerURL := testenv.Postgres(t)
	appURL := asUser(t, ownerURL, "erpgate_app")

	// The service's role cannot migrate: on a fresh database the role does
	// not exist yet, so it cannot even log in; the error says what failed.
	// (A fresh cluster has no erpgate_app; this one may, from other tests.)
	if out, err := migrate(t, "ERP_POSTGRES_OWNER_URL=", "ERP_POSTGRES_URL="+appURL); err == nil {
		t.Fatalf("migrate as erpgate_app on a fresh database succeeded:\n%s", out)
	} else if !strings.Contains(out, "postgres unreachable") && !strings.Contains(out, "gateway erp migrate") &&
		!strings.Contains(out, "permission denied") {
		t.Fatalf("migrate as erpgate_app: no clear error:\n%s", out)
	}
	// The owner's URL, as ERP_POSTGRES_OWNER_URL beside the service's.
	out, err := migrate(t, "ERP_POSTGRES_OWNER_URL="+ownerURL, "ERP_POSTGRES_URL="+appURL)
	if err != nil || !strings.Contains(out, "applied migrations") || !strings.Contains(out, "14") {
		t.Fatalf("migrate as the owner: %v\n%s", err, out)
	}

	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_POSTGRES_URL": appURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix, "ERP_MASTER_KEY": masterKey,
	}})

	// Login, select-company and refresh: user-scoped and lookup-scoped paths.
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex")
	resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": alice.Refresh}), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, resp.Body)
	}
	resp = httpt.Get(t, in.URL+"/api/v1/auth/sessions", demoauth.Bearer(alice.Access))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.Body), `"id"`) {
		t.Fatalf("sessions: %d %s", resp.StatusCode, resp.Body)
	}

	// Company-scoped: each company's API keys are its own. Alice (acme's
	// admin) makes one; bob is made globex's admin by the platform admin.
	created := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/api-keys",
		httpt.JSON(t, map[string]any{"name": "ci", "scope": []string{"invoices:read"}}), demoauth.Bearer(alice.Access))
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if created.StatusCode != http.StatusCreated {
		t.Fatalf("create api key: %d %s", created.StatusCode, created.Body)
	}
	if err := json.Unmarshal(created.Envelope(t).Data, &key); err != nil || key.ID == "" || key.Key == "" {
		t.Fatalf("create api key: %v %s", err, created.Body)
	}
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	resp = httpt.Get(t, in.URL+"/api/v1/auth/me", demoauth.Bearer(bob.Access))
	if err := json.Unmarshal(resp.Envelope(t).Data, &me); err != nil || me.User.ID == "" {
		t.Fatalf("me: %v %s", err, resp.Body)
	}
	resp = httpt.Do(t, http.MethodPut, in.URL+"/api/v1/admin/memberships/globex/"+me.User.ID,
		httpt.JSON(t, map[string]any{"roles": []string{"admin"}}), demoauth.Bearer(root))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("make bob globex's admin: %d %s", resp.StatusCode, resp.Body)
	}
	bob = demoauth.Login(t, in.URL, "bob@globex.test", "globex")
	resp = httpt.Get(t, in.URL+"/api/v1/auth/api-keys", demoauth.Bearer(bob.Access))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(resp.Body), key.ID) {
		t.Fatalf("globex's key list: %d %s (holds acme's key %s?)", resp.StatusCode, resp.Body, key.ID)
	}
	resp = httpt.Get(t, in.URL+"/api/v1/auth/api-keys", demoauth.Bearer(alice.Access))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(resp.Body), key.ID) {
		t.Fatalf("acme's key list: %d %s", resp.StatusCode, resp.Body)
	}
	// The key authenticates (its company found by the prefix lookup).
	resp = httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"X-API-Key": key.Key})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET with the API key: %d %s", resp.StatusCode, resp.Body)
	}
	// Bad input: another company's key is not found, in the envelope.
	resp = httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/auth/api-keys/"+key.ID, nil, demoauth.Bearer(bob.Access))
	if env := resp.Envelope(t); resp.StatusCode != http.StatusNotFound || env.Code() == "" {
		t.Fatalf("globex revoking acme's key: %d %s, want 404 with an error code", resp.StatusCode, resp.Body)
	}
	// …and a company the user is no member of is refused.
	resp = httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/switch-company",
		httpt.JSON(t, map[string]string{"company_id": "no-such-company"}), demoauth.Bearer(bob.Access))
	if env := resp.Envelope(t); resp.StatusCode != http.StatusForbidden || env.Code() == "" {
		t.Fatalf("switch to an unknown company: %d %s, want 403 with an error code", resp.StatusCode, resp.Body)
	}

	// The platform admin's listings: platform transactions, logged.
	for _, path := range []string{"/api/v1/admin/companies", "/api/v1/admin/memberships", "/api/v1/admin/audit?limit=5"} {
		resp := httpt.Get(t, in.URL+path, demoauth.Bearer(root))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s as root: %d %s", path, resp.StatusCode, resp.Body)
		}
	}
	resp = httpt.Get(t, in.URL+"/api/v1/admin/companies", demoauth.Bearer(root))
	if !strings.Contains(string(resp.Body), `"acme"`) || !strings.Contains(string(resp.Body), `"globex"`) {
		t.Fatalf("admin companies: %s", resp.Body)
	}
	if logs := in.Logs(); !strings.Contains(logs, "platform database access") || !strings.Contains(logs, "admin: list companies") {
		t.Fatalf("no log of the platform access:\n%s", logs)
	}

	// Straight to the database, as the owner.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	// Every connection of the binary's to this database runs as erpgate_app.
	rows, err := db.Query(ctx, `SELECT usename::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		t.Fatal("the binary holds no connection to its database")
	}
	for _, u := range users {
		if u != "erpgate_app" {
			t.Fatalf("a connection to the database runs as %q, want erpgate_app (all: %v)", u, users)
		}
	}
	// The rows the edge made are there, under row-level security.
	var sessions int
	var forced bool
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT relforcerowsecurity FROM pg_class WHERE relname = 'sessions')`).
		Scan(&sessions, &forced); err != nil {
		t.Fatal(err)
	}
	if sessions < 3 || !forced {
		t.Fatalf("sessions: %d rows, forced RLS %v", sessions, forced)
	}
	// erpgate_app with no company sees none of them.
	app, err := pgx.Connect(ctx, appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	var n int
	if err := app.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("erpgate_app with no company: %d sessions, %v; want 0", n, err)
	}
}
