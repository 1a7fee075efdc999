// Package account drives account security and administration through the
// running gateway binary: the docs page in headless Chromium, the OpenAPI
// document, TOTP, the admin API and `gateway erp audit verify` against a
// trail edited in Postgres.
package account

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// docsRoutes are the lines Caddyfile.example needs for the reference; the
// tests add them when the example does not have them yet.
const docsRoutes = `
		handle /api/v1/openapi.json {
			erp_authsvc
		}
		handle /api/v1/docs {
			erp_authsvc
		}
`

// exampleConfig is Caddyfile.example, with the docs routes when missing.
func exampleConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "/api/v1/openapi.json") && strings.Contains(s, "/api/v1/docs") {
		return s
	}
	const anchor = "\t\thandle /.well-known/* {\n\t\t\terp_authsvc\n\t\t}\n"
	if !strings.Contains(s, anchor) {
		t.Fatal("Caddyfile.example has no /.well-known/* route to put the docs routes after")
	}
	return strings.Replace(s, anchor, anchor+docsRoutes, 1)
}

func TestOpenAPIAndDocsPage(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: exampleConfig(t)})

	resp := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/openapi.json", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(resp.Body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is not the raw document: %v %.200s", err, resp.Body)
	}
	ops := 0
	for path, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "post", "put", "patch", "delete":
				ops++
				// Every documented auth-service operation is routed by the
				// running edge: nothing answers 404 for the path or 405 for the method.
				if strings.Contains(path, "{version}") || path == "/api/v1/usage" {
					continue
				}
				url := in.URL + strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000000",
					"{company_id}", "acme", "{user_id}", "bob@globex.test").Replace(path)
				r := httpt.Do(t, strings.ToUpper(m), url, []byte("{}"), nil)
				if r.StatusCode == 404 && !strings.Contains(path, "{") || r.StatusCode == 405 {
					t.Errorf("%s %s: %d %s", strings.ToUpper(m), path, r.StatusCode, r.Body)
				}
			}
		}
	}

	page := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/docs", nil, nil)
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("docs: %d %s", page.StatusCode, page.Header.Get("Content-Type"))
	}
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(string(page.Body), "<script src") || strings.Contains(string(page.Body), "https://") {
		t.Fatalf("docs page loads something from elsewhere (CSP %q)", csp)
	}

	dom, console := renderInChromium(t, in.URL+"/api/v1/docs")
	if !strings.Contains(dom, `data-rendered="true"`) {
		t.Fatalf("the page did not render:\n%.2000s\nconsole:\n%s", dom, console)
	}
	if n := strings.Count(dom, `<details class="op"`); n != ops {
		t.Fatalf("the page shows %d operations; the document has %d", n, ops)
	}
	for _, want := range []string{`data-path="/api/v1/auth/mfa/verify"`, `data-path="/api/v1/admin/audit"`, `data-path="/api/v1/usage"`,
		`data-path="/api/{version}/{backend}"`, "MFA_REQUIRED", "COMPANY_MISMATCH"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %s", want)
		}
	}
	if console != "" {
		t.Fatalf("console messages while rendering:\n%s", console)
	}
}

// renderInChromium loads url in headless Chromium (Debian's package, see
// scripts/chromium.sh) and returns the DOM after the page's scripts and
// fetches have run, and every console message (errors, CSP violations).
func renderInChromium(t *testing.T, url string) (dom, console string) {
	t.Helper()
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run scripts/chromium.sh (make test does): %v", bin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	var msgs []string
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			msgs = append(msgs, line)
		}
	}
	return string(out), strings.Join(msgs, "\n")
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	pgURL := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Config: exampleConfig(t), Env: map[string]string{
		"ERP_POSTGRES_URL": pgURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}})

	// Some auth events: logins, a failed one, TOTP, an admin change.
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	if r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "bob@globex.test", "password": "wrong"}), nil); r.StatusCode != 401 {
		t.Fatalf("failed login: %d", r.StatusCode)
	}
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme")
	if r := httpt.Do(t, http.MethodPatch, in.URL+"/api/v1/admin/companies/globex", httpt.JSON(t, map[string]string{"name": "Globex Corporation"}), demoauth.Bearer(root.Access)); r.StatusCode != 200 {
		t.Fatalf("rename: %d %s", r.StatusCode, r.Body)
	}
	enroll := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/mfa/totp/enroll", nil, demoauth.Bearer(alice.Access))
	var en struct {
		Secret string `json:"secret"`
	}
	if env := enroll.Envelope(t); enroll.StatusCode != 200 || json.Unmarshal(env.Data, &en) != nil {
		t.Fatalf("enroll: %d %s", enroll.StatusCode, enroll.Body)
	}
	code, err := totp.GenerateCodeCustom(en.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	if r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/mfa/totp/confirm", httpt.JSON(t, map[string]string{"code": code}), demoauth.Bearer(alice.Access)); r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	// Now alice's login stops at the second factor, over the real edge too.
	lr := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": demoauth.Password}), nil)
	var login struct {
		LoginToken  string `json:"login_token"`
		MFARequired bool   `json:"mfa_required"`
	}
	if env := lr.Envelope(t); json.Unmarshal(env.Data, &login) != nil || !login.MFARequired {
		t.Fatalf("login with TOTP on: %s", lr.Body)
	}
	sel := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": login.LoginToken, "company_id": "acme"}), nil)
	if env := sel.Envelope(t); sel.StatusCode != 401 || env.Code() != "MFA_REQUIRED" {
		t.Fatalf("select-company before verify: %d %s", sel.StatusCode, sel.Body)
	}

	verify := func() (string, int) {
		t.Helper()
		cmd := exec.Command(stacktest.Binary(t), "erp", "audit", "verify", "--postgres", pgURL)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, exit := verify()
	if exit != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("verify on an untouched trail: exit %d\n%s", exit, out)
	}
	if strings.Contains(out, pgURL) {
		t.Fatal("verify printed the database URL")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var total, target int64
	if err := conn.QueryRow(ctx, `SELECT count(*), (SELECT seq FROM audit_events WHERE type = 'login.failed' ORDER BY seq LIMIT 1) FROM audit_events`).Scan(&total, &target); err != nil {
		t.Fatal(err)
	}
	if total < 8 {
		t.Fatalf("only %d audit records", total)
	}
	// Nothing secret in the trail.
	var dump string
	if err := conn.QueryRow(ctx, `SELECT string_agg(audit_events::text, E'\n') FROM audit_events`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{demoauth.Password, en.Secret, code, alice.Access, alice.Refresh, root.Access, login.LoginToken} {
		if strings.Contains(dump, secret) {
			t.Fatalf("a secret (%.6s…) is in the audit trail", secret)
		}
	}
	// Someone with write access to the database rewrites history: the failed
	// login becomes a success.
	if _, err := conn.Exec(ctx, `UPDATE audit_events SET type = 'login.succeeded' WHERE seq = $1`, target); err != nil {
		t.Fatal(err)
	}
	out, exit = verify()
	if exit == 0 || !strings.Contains(out, "record "+itoa(target)) || !strings.Contains(out, "edited") {
		t.Fatalf("verify after editing record %d: exit %d\n%s", target, exit, out)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
