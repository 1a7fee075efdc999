// Package tls runs the gateway binary on Caddyfile.tls.example (the whole
// stack on HTTPS with a certificate of Caddy's internal CA) and talks to it
// with the real curl: trusted with the CA's root, refused without it, HSTS
// on every HTTPS answer, plain HTTP redirected to HTTPS.
package tls

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/stacktest"
)

const hsts = "max-age=31536000; includeSubDomains"

// answer is what curl got: status, headers, body.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// curl runs curl with args (-sS and the headers on stdout added) and parses
// the last answer it printed; err is curl's exit error with its stderr.
func curl(t *testing.T, args ...string) (*answer, error) {
	t.Helper()
	cmd := exec.Command("curl", append([]string{"-sS", "--max-time", "20", "-i"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &curlError{err: err, stderr: stderr.String()}
	}
	head, body, ok := bytes.Cut(stdout.Bytes(), []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("curl %v: no header block in %q", args, stdout.String())
	}
	for bytes.HasPrefix(body, []byte("HTTP/")) { // -L: the answers followed
		head, body, _ = bytes.Cut(body, []byte("\r\n\r\n"))
	}
	lines := strings.Split(string(head), "\r\n")
	f := strings.Fields(lines[0])
	if len(f) < 2 {
		t.Fatalf("curl %v: status line %q", args, lines[0])
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("curl %v: status line %q", args, lines[0])
	}
	a := &answer{status: status, header: http.Header{}, body: body}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			a.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return a, nil
}

type curlError struct {
	err    error
	stderr string
}

func (e *curlError) Error() string { return e.err.Error() + ": " + e.stderr }

// exitCode is curl's exit status (60: the peer's certificate could not be
// verified with the known CA certificates).
func (e *curlError) exitCode() int {
	var ee *exec.ExitError
	if errors.As(e.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Errors  []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Meta struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
}

func decode(t *testing.T, what string, a *answer) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("%s: not an envelope: %v: %s", what, err, a.body)
	}
	if e.Meta.RequestID == "" {
		t.Fatalf("%s: envelope without a request id: %s", what, a.body)
	}
	return e
}

func TestHTTPSWithInternalCA(t *testing.T) {
	httpPort, httpsPort := stacktest.FreePort(t), stacktest.FreePort(t)
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.tls.example"))
	if err != nil {
		t.Fatal(err)
	}
	base := "https://localhost:" + strconv.Itoa(httpsPort)
	in := stacktest.Start(t, stacktest.Options{Config: string(b), Env: map[string]string{
		// stacktest waits for ERP_LISTEN: here, the port redirecting to HTTPS
		"ERP_LISTEN":     ":" + strconv.Itoa(httpPort),
		"ERP_HTTP_PORT":  strconv.Itoa(httpPort),
		"ERP_HTTPS_PORT": strconv.Itoa(httpsPort),
		"ERP_TLS_HOST":   "localhost",
		"ERP_PUBLIC_URL": base,
	}})
	// Caddy's internal CA writes its root under the data directory
	// (XDG_DATA_HOME, the instance's directory here); the site's
	// certificate is issued in the background: wait for both.
	root := filepath.Join(in.Dir, "caddy", "pki", "authorities", "local", "root.crt")
	resolve := "localhost:" + strconv.Itoa(httpsPort) + ":127.0.0.1"
	var ready *answer
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(root); err == nil {
			if ready, err = curl(t, "--cacert", root, "--resolve", resolve, base+"/health/ready"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer verified with %s within 30s: %v", root, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ready.status != http.StatusOK || !decode(t, "ready", ready).Success {
		t.Fatalf("GET /health/ready over HTTPS: %d %s", ready.status, ready.body)
	}
	if got := ready.header.Get("Strict-Transport-Security"); got != hsts {
		t.Fatalf("Strict-Transport-Security %q, want %q", got, hsts)
	}

	// errors the edge makes are envelopes with HSTS too
	for _, tc := range []struct {
		name, code string
		status     int
		args       []string
	}{
		{"unknown route", "NOT_FOUND", 404, []string{base + "/no/such/route"}},
		{"no token", "UNAUTHENTICATED", 401, []string{base + "/api/v2/invoices"}},
		{"bad login body", "BAD_REQUEST", 400, []string{"-X", "POST", "-H", "Content-Type: application/json",
			"-d", `{"email":"alice@acme.test"`, base + "/api/v1/auth/login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := curl(t, append([]string{"--cacert", root, "--resolve", resolve}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			e := decode(t, tc.name, a)
			if a.status != tc.status || e.Success || len(e.Errors) != 1 || e.Errors[0].Code != tc.code || e.Errors[0].Message == "" {
				t.Fatalf("%d %s, want %d %s", a.status, a.body, tc.status, tc.code)
			}
			if got := a.header.Get("Strict-Transport-Security"); got != hsts {
				t.Fatalf("Strict-Transport-Security %q on the error", got)
			}
		})
	}

	// a whole sign-in over HTTPS: login, then a company's data
	login, err := curl(t, "--cacert", root, "--resolve", resolve, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"email":"alice@acme.test","password":"erpgate-demo"}`, base+"/api/v1/auth/login")
	if err != nil || login.status != http.StatusOK {
		t.Fatalf("login: %v %+v", err, login)
	}
	var lt struct {
		LoginToken string `json:"login_token"`
	}
	if err := json.Unmarshal(decode(t, "login", login).Data, &lt); err != nil || lt.LoginToken == "" {
		t.Fatalf("login: %v %s", err, login.body)
	}
	sel, err := curl(t, "--cacert", root, "--resolve", resolve, "-X", "POST", "-H", "Content-Type: application/json",
		"-d", `{"login_token":"`+lt.LoginToken+`","company_id":"acme"}`, base+"/api/v1/auth/select-company")
	if err != nil || sel.status != http.StatusOK {
		t.Fatalf("select-company: %v %+v", err, sel)
	}
	var at struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(decode(t, "select-company", sel).Data, &at); err != nil || at.AccessToken == "" {
		t.Fatalf("select-company: %v %s", err, sel.body)
	}
	inv, err := curl(t, "--cacert", root, "--resolve", resolve, "-H", "Authorization: Bearer "+at.AccessToken, base+"/api/v2/invoices?limit=2")
	if err != nil || inv.status != http.StatusOK || !decode(t, "invoices", inv).Success {
		t.Fatalf("invoices over HTTPS: %v %+v", err, inv)
	}

	// without the CA, curl refuses the certificate (exit 60): nothing was
	// added to the system's trust store
	_, err = curl(t, "--resolve", resolve, base+"/health/ready")
	var ce *curlError
	if !errors.As(err, &ce) || ce.exitCode() != 60 {
		t.Fatalf("curl without the CA: %v, want exit 60 (certificate not verified)", err)
	}

	// plain HTTP answers with a redirect to HTTPS, without HSTS (a browser
	// ignores it on http://)
	redirect, err := curl(t, "http://localhost:"+strconv.Itoa(httpPort)+"/health/ready?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if redirect.status != http.StatusPermanentRedirect || redirect.header.Get("Location") != base+"/health/ready?x=1" {
		t.Fatalf("HTTP: %d Location %q, want 308 to %s", redirect.status, redirect.header.Get("Location"), base+"/health/ready?x=1")
	}
	// following it with the CA ends at the HTTPS answer
	followed, err := curl(t, "-L", "--cacert", root, "--resolve", resolve, "http://localhost:"+strconv.Itoa(httpPort)+"/health/live")
	if err != nil || followed.status != http.StatusOK || followed.header.Get("Strict-Transport-Security") != hsts {
		t.Fatalf("HTTP followed to HTTPS: %v %+v", err, followed)
	}
}
