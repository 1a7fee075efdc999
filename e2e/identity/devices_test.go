// Package identity_test drives issue #17's sign-in features through the
// running gateway binary. This file: trusted devices and risk-based step-up.
package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestDevicesTrustRevokeAndPasswordChange: a device trusted after a second
// factor skips it at the next logins (by its token and by its cookie);
// it is listed without its credential, revocable by its user only, and a
// password change revokes it. Its credential is hashed at rest and in no
// log or audit record.
func TestDevicesTrustRevokeAndPasswordChange(t *testing.T) {
	t.Parallel()
	pgURL := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Config: devicesConfig(t, ""), Env: map[string]string{
		"ERP_POSTGRES_URL": pgURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}})
	const alice = "alice@acme.test"

	access := demoauth.Login(t, in.URL, alice, "acme").Access
	_, recovery := devicesEnrollTOTP(t, in.URL, access)
	bobAccess := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access

	// A second factor without trust_device: no device, no cookie.
	l := devicesPassword(t, nil, in.URL, alice, demoauth.Password, "", "")
	if l.Status != 200 || !l.MFARequired || !slices.Contains(l.MFAMethods, "totp") {
		t.Fatalf("login with TOTP on: %s", l.Raw)
	}
	_, _, vr := devicesVerify(t, nil, in.URL, l.LoginToken, recovery[0], false)
	if len(vr.Cookies()) != 0 {
		t.Fatalf("a device cookie without trust_device: %v", vr.Header["Set-Cookie"])
	}

	// With trust_device, through a browser-like client: the credential in
	// the answer (once) and in an HttpOnly SameSite=Strict cookie; the
	// public URL is plain http, so erp_device without Secure.
	browser := devicesJar(t)
	l = devicesPassword(t, browser, in.URL, alice, demoauth.Password, "", "")
	if !l.MFARequired {
		t.Fatalf("login before trusting: %s", l.Raw)
	}
	done, dev, vr := devicesVerify(t, browser, in.URL, l.LoginToken, recovery[1], true)
	if !strings.HasPrefix(dev.Token, "erd_") || len(dev.Token) != 4+43 || dev.ID == "" || dev.Name != "Go HTTP client" || dev.IP != "127.0.0.1" ||
		!dev.Current || dev.ExpiresAt.Sub(dev.CreatedAt) != 30*24*time.Hour {
		t.Fatalf("trusted device = %+v", dev)
	}
	var cookie *http.Cookie
	for _, c := range vr.Cookies() {
		if c.Name == "erp_device" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != dev.Token || !cookie.HttpOnly || cookie.Secure || cookie.SameSite != http.SameSiteStrictMode ||
		cookie.Path != "/" || cookie.MaxAge != 30*24*3600 {
		t.Fatalf("device cookie = %+v (Set-Cookie %v)", cookie, vr.Header["Set-Cookie"])
	}
	devicesSelect(t, in.URL, done, "acme")

	// The next login with the token skips the second factor, so does one
	// with the cookie; a token of the right shape that is nobody's does not.
	l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, dev.Token, "")
	if l.Status != 200 || l.MFARequired || len(l.MFAMethods) != 0 {
		t.Fatalf("login with the device token: %s", l.Raw)
	}
	devicesSelect(t, in.URL, l.LoginToken, "acme")
	l = devicesPassword(t, browser, in.URL, alice, demoauth.Password, "", "")
	if l.Status != 200 || l.MFARequired {
		t.Fatalf("login with the device cookie: %s", l.Raw)
	}
	forged := "erd_" + strings.Repeat("A", 43)
	if l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, forged, ""); !l.MFARequired {
		t.Fatalf("login with a forged device token: %s", l.Raw)
	}
	if l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, "garbage", ""); !l.MFARequired {
		t.Fatalf("login with a malformed device token: %s", l.Raw)
	}
	// Another user presenting alice's device credential gets nothing from it.
	devicesEnrollTOTP(t, in.URL, bobAccess)
	if l = devicesPassword(t, nil, in.URL, "bob@globex.test", demoauth.Password, dev.Token, ""); l.Status != 200 || !l.MFARequired {
		t.Fatalf("bob's login with alice's device token: %s", l.Raw)
	}

	// Listed for alice, without the credential; current through the cookie.
	list := devicesList(t, nil, in.URL, access)
	if len(list) != 1 || list[0].ID != dev.ID || list[0].Name != "Go HTTP client" || list[0].Current {
		t.Fatalf("devices = %+v", list)
	}
	if list = devicesList(t, browser, in.URL, access); len(list) != 1 || !list[0].Current {
		t.Fatalf("devices through the browser = %+v", list)
	}
	if list = devicesList(t, nil, in.URL, bobAccess); len(list) != 0 {
		t.Fatalf("bob sees devices: %+v", list)
	}
	// No bearer: 401.
	if r := httpt.Get(t, in.URL+"/api/v1/auth/devices", nil); r.StatusCode != 401 || r.Envelope(t).Code() == "" {
		t.Fatalf("GET /devices without a token: %d %s", r.StatusCode, r.Body)
	}

	// Another user's device, an unknown id and a malformed one: 404.
	for _, tc := range []struct{ id, access string }{{dev.ID, bobAccess}, {"00000000-0000-0000-0000-000000000000", access}, {"x'--", access}} {
		r := httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/auth/devices/"+tc.id, nil, demoauth.Bearer(tc.access))
		if env := r.Envelope(t); r.StatusCode != 404 || env.Code() != "NOT_FOUND" {
			t.Fatalf("DELETE %s: %d %s", tc.id, r.StatusCode, r.Body)
		}
	}
	if l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, dev.Token, ""); l.MFARequired {
		t.Fatalf("bob's DELETE revoked alice's device: %s", l.Raw)
	}
	// Alice revokes it: the second factor again, with the token and the cookie.
	r := httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/auth/devices/"+dev.ID, nil, demoauth.Bearer(access))
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), `"revoked":true`) {
		t.Fatalf("DELETE own device: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/auth/devices/"+dev.ID, nil, demoauth.Bearer(access)); r.StatusCode != 404 {
		t.Fatalf("DELETE twice: %d %s", r.StatusCode, r.Body)
	}
	for _, c := range []*http.Client{nil, browser} {
		tok := ""
		if c == nil {
			tok = dev.Token
		}
		if l = devicesPassword(t, c, in.URL, alice, demoauth.Password, tok, ""); !l.MFARequired {
			t.Fatalf("login with a revoked device: %s", l.Raw)
		}
	}
	if list = devicesList(t, nil, in.URL, access); len(list) != 0 {
		t.Fatalf("devices after revocation = %+v", list)
	}

	// Trust again, then change the password: the device is revoked with it.
	l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, "", "")
	done, dev2, _ := devicesVerify(t, nil, in.URL, l.LoginToken, recovery[2], true)
	access = devicesSelect(t, in.URL, done, "acme")
	if l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, dev2.Token, ""); l.MFARequired {
		t.Fatalf("login with the second device: %s", l.Raw)
	}
	const newPassword = "a-new-password-for-alice"
	r = httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/password",
		httpt.JSON(t, map[string]string{"current_password": demoauth.Password, "new_password": newPassword}), demoauth.Bearer(access))
	if r.StatusCode != 200 {
		t.Fatalf("password change: %d %s", r.StatusCode, r.Body)
	}
	if l = devicesPassword(t, nil, in.URL, alice, newPassword, dev2.Token, ""); l.Status != 200 || !l.MFARequired {
		t.Fatalf("login with a device trusted before the password change: %s", l.Raw)
	}
	if list = devicesList(t, nil, in.URL, access); len(list) != 0 {
		t.Fatalf("devices after the password change = %+v", list)
	}

	// At rest: the hashes only; the trail has the device events and no
	// credential; neither has the logs.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows, revokedByUser, revokedByPassword int
	var dump string
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE revoke_reason = 'revoked_by_user'),
		count(*) FILTER (WHERE revoke_reason = 'password_changed'), coalesce(string_agg(trusted_devices::text, E'\n'), '') FROM trusted_devices`).
		Scan(&rows, &revokedByUser, &revokedByPassword, &dump); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || revokedByUser != 1 || revokedByPassword != 1 {
		t.Fatalf("trusted_devices: %d rows, %d revoked by the user, %d by the password change", rows, revokedByUser, revokedByPassword)
	}
	for _, d := range []devicesView{dev, dev2} {
		h := sha256.Sum256([]byte(d.Token))
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM trusted_devices WHERE id = $1 AND token_hash = $2`, d.ID, h[:]).Scan(&n); err != nil || n != 1 {
			t.Fatalf("device %s is not kept by its credential's SHA-256: %d %v", d.ID, n, err)
		}
		if strings.Contains(dump, d.Token) || strings.Contains(dump, d.Token[4:]) {
			t.Fatal("a device credential is stored in the clear")
		}
	}
	var events []string
	var trail string
	if err := conn.QueryRow(ctx, `SELECT array_agg(type ORDER BY at, seq) FILTER (WHERE type LIKE 'device.%'), string_agg(audit_events::text, E'\n') FROM audit_events`).
		Scan(&events, &trail); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(events, []string{"device.trusted", "device.revoked", "device.trusted"}) {
		t.Fatalf("device audit records = %v", events)
	}
	var trustedDetails map[string]string
	if err := conn.QueryRow(ctx, `SELECT details FROM audit_events WHERE type = 'login.succeeded' AND details->>'trusted_device' = $1 LIMIT 1`, dev.ID).
		Scan(&trustedDetails); err != nil {
		t.Fatalf("no login.succeeded names the trusted device: %v", err)
	}
	logs := in.Logs()
	for _, d := range []devicesView{dev, dev2} {
		if strings.Contains(trail, d.Token[4:]) || strings.Contains(logs, d.Token[4:]) {
			t.Fatal("a device credential is in the audit trail or the logs")
		}
	}
	if !strings.Contains(logs, "device trusted") {
		t.Fatal("the logs do not say a device was trusted")
	}
}

// TestDevicesRiskStepUp: with the default thresholds, a trusted device
// logging in from a new network after 5 failed logins of the account must
// pass the second factor (score 60); from its known network, the same
// failures don't (35). A user's first login is not stepped up for being
// new; a user without a second factor who is stepped up is offered a code
// by mail. The audit record says the score and the signals.
func TestDevicesRiskStepUp(t *testing.T) {
	t.Parallel()
	pgURL := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Config: devicesConfig(t, ""), Env: map[string]string{
		"ERP_POSTGRES_URL": pgURL, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}})
	const alice, bob = "alice@acme.test", "bob@globex.test"

	access := demoauth.Login(t, in.URL, alice, "acme").Access // a login from 127.0.0.1: its network is known
	_, recovery := devicesEnrollTOTP(t, in.URL, access)
	l := devicesPassword(t, nil, in.URL, alice, demoauth.Password, "", "")
	_, dev, _ := devicesVerify(t, nil, in.URL, l.LoginToken, recovery[0], true)

	fail := func(email string, n int) {
		t.Helper()
		for range n {
			if l := devicesPassword(t, nil, in.URL, email, "wrong-password", "", "198.51.100.20"); l.Status != 401 {
				t.Fatalf("failed login: %s", l.Raw)
			}
		}
	}
	fail(alice, 5)
	// From the known network, the trusted device still skips the factor.
	if l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, dev.Token, ""); l.Status != 200 || l.MFARequired {
		t.Fatalf("trusted device, known network, 5 failures: %s", l.Raw)
	}
	// From a new network: stepped up, even on the trusted device.
	l = devicesPassword(t, nil, in.URL, alice, demoauth.Password, dev.Token, "203.0.113.9")
	if l.Status != 200 || !l.MFARequired || !slices.Contains(l.MFAMethods, "totp") {
		t.Fatalf("trusted device, new network, 5 failures: %s", l.Raw)
	}
	sel := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": l.LoginToken, "company_id": "acme"}), nil)
	if env := sel.Envelope(t); sel.StatusCode != 401 || env.Code() != "MFA_REQUIRED" {
		t.Fatalf("select-company of a stepped-up login: %d %s", sel.StatusCode, sel.Body)
	}

	// bob: his first login ever, from a new place after 5 failures, is not
	// stepped up (35: nothing is new to a user with no history); the next
	// one, from yet another network, is (60), and he has no factor of his
	// own: a code by mail.
	fail(bob, 5)
	if l = devicesPassword(t, nil, in.URL, bob, demoauth.Password, "", "192.0.2.10"); l.Status != 200 || l.MFARequired {
		t.Fatalf("bob's first login: %s", l.Raw)
	}
	devicesSelect(t, in.URL, l.LoginToken, "globex") // completed: 192.0.2.0/24 is known now
	if l = devicesPassword(t, nil, in.URL, bob, demoauth.Password, "", "192.0.2.77"); l.Status != 200 || l.MFARequired {
		t.Fatalf("bob from his known network: %s", l.Raw)
	}
	if l = devicesPassword(t, nil, in.URL, bob, demoauth.Password, "", "203.0.113.50"); l.Status != 200 || !l.MFARequired || !slices.Equal(l.MFAMethods, []string{"email"}) {
		t.Fatalf("bob from a new network after 5 failures: %s", l.Raw)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var details map[string]string
	if err := conn.QueryRow(ctx, `SELECT details FROM audit_events WHERE type = 'login.succeeded' AND ip = '203.0.113.9' ORDER BY seq DESC LIMIT 1`).
		Scan(&details); err != nil {
		t.Fatal(err)
	}
	if details["risk_score"] != "60" || details["risk_signals"] != "new_network,recent_failures" || details["mfa_required"] != "true" || details["trusted_device"] != dev.ID {
		t.Fatalf("stepped-up login's audit details = %v", details)
	}
	// The history keeps networks, not addresses.
	var nets []string
	if err := conn.QueryRow(ctx, `SELECT array_agg(network ORDER BY network) FROM login_history h JOIN users u ON u.id = h.user_id WHERE u.email = $1`, bob).
		Scan(&nets); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nets, []string{"192.0.2.0/24"}) {
		t.Fatalf("bob's login history = %v (only completed logins count)", nets)
	}
}

// TestDevicesRiskDeny: at the deny threshold (here lowered to 60 by the
// config's `risk { deny 60 }`) the login is refused with 401, the same
// answer whatever made the score, and audited as login.risk_refused with
// the score and the signals; from the known network the same password
// passes.
func TestDevicesRiskDeny(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: devicesConfig(t, "\t\t\trisk {\n\t\t\t\tdeny 60\n\t\t\t}\n")})
	const bob = "bob@globex.test"
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	demoauth.Login(t, in.URL, bob, "globex") // 127.0.0.0/24 known
	for range 5 {
		if l := devicesPassword(t, nil, in.URL, bob, "wrong-password", "", ""); l.Status != 401 {
			t.Fatalf("failed login: %s", l.Raw)
		}
	}
	l := devicesPassword(t, nil, in.URL, bob, demoauth.Password, "", "203.0.113.66")
	if l.Status != 401 || l.Code != "UNAUTHENTICATED" || strings.Contains(l.Raw, "risk") || strings.Contains(l.Raw, "login_token") {
		t.Fatalf("a login over the deny threshold: %s", l.Raw)
	}
	if l = devicesPassword(t, nil, in.URL, bob, demoauth.Password, "", ""); l.Status != 200 || l.MFARequired {
		t.Fatalf("the same login from the known network: %s", l.Raw)
	}
	r := httpt.Get(t, in.URL+"/api/v1/admin/audit?type=login.risk_refused", demoauth.Bearer(root))
	var evs []struct {
		Type    string            `json:"type"`
		IP      string            `json:"ip"`
		Details map[string]string `json:"details"`
	}
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &evs) != nil {
		t.Fatalf("audit: %d %s", r.StatusCode, r.Body)
	}
	var found bool
	for _, ev := range evs {
		if ev.Type == "login.risk_refused" && ev.IP == "203.0.113.66" && ev.Details["score"] == "60" && ev.Details["signals"] == "new_network,recent_failures" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no login.risk_refused record with the score and signals: %s", r.Body)
	}
	if !strings.Contains(in.Logs(), "login refused: risk") {
		t.Fatal("the refusal is not logged")
	}
}
