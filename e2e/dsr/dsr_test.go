// Package dsr checks data-subject requests and retention against the
// running binary on Postgres and Redis: an admin exports everything stored
// about a person (without a secret), erases them (login fails, their
// tokens stop, the export is gone, no audit record names them) and
// `gateway erp audit verify` still passes; audit retention removes old
// records behind signed checkpoints that verify, and an edited checkpoint
// fails verify.
package dsr

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const masterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// start runs Caddyfile.example on a database of its own, with extra env.
func start(t *testing.T, extra map[string]string) (*stacktest.Instance, string) {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	pg := testenv.Postgres(t)
	env := map[string]string{"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix, "ERP_MASTER_KEY": masterKey}
	for k, v := range extra {
		env[k] = v
	}
	return stacktest.Start(t, stacktest.Options{Env: env}), pg
}

// verify runs `gateway erp audit verify` on pg, with the master key when
// withKey; it returns the output and the exit code.
func verify(t *testing.T, pg string, withKey bool) (string, int) {
	t.Helper()
	cmd := exec.Command(stacktest.Binary(t), "erp", "audit", "verify", "--postgres", pg)
	cmd.Env = os.Environ()
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "ERP_MASTER_KEY=") {
			cmd.Env[i] = "ERP_MASTER_KEY="
		}
	}
	if withKey {
		cmd.Env = append(cmd.Env, "ERP_MASTER_KEY="+masterKey)
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), pg) {
		t.Fatal("verify printed the database URL")
	}
	return string(out), code
}

func do(t *testing.T, method, url, bearer string, body any) (*httpt.Response, *httpt.Envelope) {
	t.Helper()
	var b []byte
	if body != nil {
		b = httpt.JSON(t, body)
	}
	h := map[string]string{}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	r := httpt.Do(t, method, url, b, h)
	return r, r.Envelope(t)
}

func TestExportEraseVerify(t *testing.T) {
	t.Parallel()
	in, pg := start(t, nil)
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access

	// A person: an account, a membership, a session, a failed login.
	email := "dora-" + uuid.NewString()[:8] + "@acme.test"
	r, env := do(t, http.MethodPost, in.URL+"/api/v1/admin/users", root, map[string]any{"email": email, "name": "Dora Subject", "password": demoauth.Password})
	var user struct {
		ID string `json:"id"`
	}
	if r.StatusCode != 201 || json.Unmarshal(env.Data, &user) != nil || user.ID == "" {
		t.Fatalf("create user: %d %s", r.StatusCode, r.Body)
	}
	if r, _ := do(t, http.MethodPut, in.URL+"/api/v1/admin/memberships/acme/"+user.ID, root, map[string]any{"roles": []string{"viewer"}}); r.StatusCode/100 != 2 {
		t.Fatalf("membership: %d %s", r.StatusCode, r.Body)
	}
	if r, _ := do(t, http.MethodPost, in.URL+"/api/v1/auth/login", "", map[string]string{"email": email, "password": "not-her-password"}); r.StatusCode != 401 {
		t.Fatalf("failed login: %d %s", r.StatusCode, r.Body)
	}
	dora := demoauth.Login(t, in.URL, email, "acme")

	exportURL := in.URL + "/api/v1/admin/users/" + user.ID + "/export"
	r, env = do(t, http.MethodGet, exportURL, root, nil)
	if r.StatusCode != 200 {
		t.Fatalf("export: %d %s", r.StatusCode, r.Body)
	}
	var exp struct {
		User struct {
			ID, Email, Name string
		} `json:"user"`
		Memberships []struct {
			CompanyID string   `json:"company_id"`
			Roles     []string `json:"roles"`
		} `json:"memberships"`
		Sessions []struct {
			ID, IP string
		} `json:"sessions"`
		Factors        []any `json:"factors"`
		Passkeys       []any `json:"passkeys"`
		TrustedDevices []any `json:"trusted_devices"`
		APIKeys        []any `json:"api_keys"`
		Audit          []struct {
			Type    string            `json:"type"`
			Details map[string]string `json:"details"`
		} `json:"audit"`
	}
	if err := json.Unmarshal(env.Data, &exp); err != nil {
		t.Fatal(err)
	}
	if exp.User.ID != user.ID || exp.User.Email != email || exp.User.Name != "Dora Subject" || len(exp.Memberships) != 1 ||
		exp.Memberships[0].CompanyID != "acme" || len(exp.Sessions) != 1 || exp.Sessions[0].IP == "" ||
		exp.Factors == nil || exp.Passkeys == nil || exp.TrustedDevices == nil || exp.APIKeys == nil {
		t.Fatalf("export: %s", env.Data)
	}
	types := map[string]bool{}
	for _, a := range exp.Audit {
		types[a.Type] = true
	}
	for _, want := range []string{"admin.user.created", "admin.membership.set", "company.selected"} {
		if !types[want] {
			t.Fatalf("export's audit lacks %s: %v", want, types)
		}
	}
	for _, secret := range []string{"password_hash", "$argon2id", demoauth.Password, dora.Refresh, dora.Access, "sealed", "secret"} {
		if strings.Contains(string(r.Body), secret) {
			t.Fatalf("the export holds %q", secret)
		}
	}

	// Refusals: another company's admin, an unknown user, no confirmation.
	if r, env := do(t, http.MethodGet, exportURL, alice, nil); r.StatusCode != 403 || env.Code() != "FORBIDDEN" {
		t.Fatalf("export by a company admin: %d %s", r.StatusCode, r.Body)
	}
	if r, env := do(t, http.MethodGet, in.URL+"/api/v1/admin/users/"+uuid.NewString()+"/export", root, nil); r.StatusCode != 404 || env.Code() != "NOT_FOUND" {
		t.Fatalf("export of nobody: %d %s", r.StatusCode, r.Body)
	}
	userURL := in.URL + "/api/v1/admin/users/" + user.ID
	for _, q := range []string{"", "?erase=false", "?erase=1"} {
		r, env := do(t, http.MethodDelete, userURL+q, root, nil)
		if r.StatusCode != 400 || env.Code() != "BAD_REQUEST" || len(env.Errors) == 0 || !strings.Contains(env.Errors[0].Message, "erase=true") {
			t.Fatalf("delete%s: %d %s", q, r.StatusCode, r.Body)
		}
	}
	if r, env := do(t, http.MethodDelete, userURL+"?erase=true", alice, nil); r.StatusCode != 403 || env.Code() != "FORBIDDEN" {
		t.Fatalf("erase by a company admin: %d %s", r.StatusCode, r.Body)
	}
	if r, env := do(t, http.MethodDelete, in.URL+"/api/v1/admin/users/"+uuid.NewString()+"?erase=true", root, nil); r.StatusCode != 404 || env.Code() != "NOT_FOUND" {
		t.Fatalf("erase of nobody: %d %s", r.StatusCode, r.Body)
	}

	r, env = do(t, http.MethodDelete, userURL+"?erase=true", root, nil)
	var erased struct {
		Erased    bool   `json:"erased"`
		Pseudonym string `json:"pseudonym"`
		Revoked   int    `json:"revoked_sessions"`
		Records   int    `json:"audit_records_pseudonymised"`
	}
	if r.StatusCode != 200 || json.Unmarshal(env.Data, &erased) != nil || !erased.Erased || erased.Revoked != 1 || erased.Records < 4 {
		t.Fatalf("erase: %d %s", r.StatusCode, r.Body)
	}

	// The trail names her no more (what her tokens and address do after
	// this is recorded as it comes) and records the erasure.
	r, env = do(t, http.MethodGet, in.URL+"/api/v1/admin/audit?limit=200", root, nil)
	if r.StatusCode != 200 {
		t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
	}
	if strings.Contains(string(r.Body), email) || strings.Contains(string(r.Body), user.ID) {
		t.Fatalf("the audit trail still names her: %s", r.Body)
	}
	var recs []struct {
		Type      string            `json:"type"`
		SubjectID string            `json:"subject_id"`
		Details   map[string]string `json:"details"`
	}
	must(t, json.Unmarshal(env.Data, &recs))
	found := false
	for _, rec := range recs {
		found = found || (rec.Type == "admin.user.erased" && rec.SubjectID == erased.Pseudonym && rec.Details["sessions_revoked"] == "1")
	}
	if !found {
		t.Fatalf("no admin.user.erased record for %s", erased.Pseudonym)
	}
	// She is gone: login, her token, her refresh token, the export.
	if r, _ := do(t, http.MethodPost, in.URL+"/api/v1/auth/login", "", map[string]string{"email": email, "password": demoauth.Password}); r.StatusCode != 401 {
		t.Fatalf("login after erasure: %d %s", r.StatusCode, r.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := do(t, http.MethodGet, in.URL+"/api/v1/auth/me", dora.Access, nil)
		if r.StatusCode == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("her access token after erasure: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r, _ := do(t, http.MethodPost, in.URL+"/api/v1/auth/refresh", "", map[string]string{"refresh_token": dora.Refresh}); r.StatusCode != 401 {
		t.Fatalf("her refresh token after erasure: %d %s", r.StatusCode, r.Body)
	}
	if r, env := do(t, http.MethodGet, exportURL, root, nil); r.StatusCode != 404 || env.Code() != "NOT_FOUND" {
		t.Fatalf("export after erasure: %d %s", r.StatusCode, r.Body)
	}
	if r, _ := do(t, http.MethodDelete, userURL+"?erase=true", root, nil); r.StatusCode != 404 {
		t.Fatalf("second erase: %d %s", r.StatusCode, r.Body)
	}

	// The trail still verifies.
	if out, code := verify(t, pg, true); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify after the erasure: exit %d\n%s", code, out)
	}
	if out, code := verify(t, pg, false); code != 1 || !strings.Contains(out, "ERP_MASTER_KEY") {
		t.Fatalf("verify without the master key: exit %d\n%s", code, out)
	}
}

func TestAuditRetention(t *testing.T) {
	t.Parallel()
	in, pg := start(t, map[string]string{"ERP_AUDIT_RETENTION": "2s", "ERP_RETENTION_INTERVAL": "1s"})
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	for range 5 {
		if r, _ := do(t, http.MethodPost, in.URL+"/api/v1/auth/login", "", map[string]string{"email": "bob@globex.test", "password": "wrong-password"}); r.StatusCode != 401 {
			t.Fatalf("failed login: %d %s", r.StatusCode, r.Body)
		}
	}
	// The job runs every second: old records go, an audit.pruned record says so.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, env := do(t, http.MethodGet, in.URL+"/api/v1/admin/audit?type=audit.pruned", root, nil)
		if r.StatusCode != 200 {
			t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
		}
		if env.Pagination != nil && env.Pagination.Total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit.pruned record after a minute; logs:\n%s", in.Logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	must(t, err)
	defer conn.Close(context.Background())
	var removed int64
	must(t, conn.QueryRow(ctx, `SELECT coalesce(sum(removed), 0) FROM audit_checkpoints WHERE signature IS NOT NULL`).Scan(&removed))
	if removed < 5 {
		t.Fatalf("checkpoints count %d removed records", removed)
	}
	if out, code := verify(t, pg, true); code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "checkpoint") {
		t.Fatalf("verify after retention: exit %d\n%s", code, out)
	}
	if out, code := verify(t, pg, false); code != 1 || !strings.Contains(out, "ERP_MASTER_KEY") {
		t.Fatalf("verify of a cut trail without the master key: exit %d\n%s", code, out)
	}
	// A checkpoint moved by hand (to hide a cut-off start) fails verify.
	in.Stop()
	tag, err := conn.Exec(ctx, `UPDATE audit_checkpoints SET removed = removed + 1 WHERE stripe = (SELECT min(stripe) FROM audit_checkpoints WHERE signature IS NOT NULL)`)
	must(t, err)
	if tag.RowsAffected() != 1 {
		t.Fatal("no checkpoint to tamper with")
	}
	if out, code := verify(t, pg, true); code != 1 || !strings.Contains(out, "checkpoint") || !strings.Contains(out, "edited") {
		t.Fatalf("verify after editing a checkpoint: exit %d\n%s", code, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
