package authsvc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// devicesEnv is newEnv (memory store) with the security monitor's hook.
func devicesEnv(t *testing.T, cfg authsvc.Config, signals func(ctx context.Context, ip, userID string) (int, []string)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	e := &env{clock: &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: logs}
	e.hasher = &countingHasher{inner: authsvc.NewArgon2idParams(1, 64, 1, 4)}
	cfg.Demo = true
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := authsvc.New(ctx, cfg, authsvc.Deps{Logger: zap.New(core), Clock: e.clock, Hasher: e.hasher, RiskSignals: signals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Close() })
	e.svc, e.heard = svc, map[string]bool{}
	e.h = svc.Handler(authsvc.HTTPOptions{})
	return e
}

// devicesLastAudit is the newest audit record of typ.
func devicesLastAudit(t *testing.T, e *env, typ string) store.Event {
	t.Helper()
	evs, _, err := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{Types: []string{typ}}, store.Page{Limit: 1})
	if err != nil || len(evs) == 0 {
		t.Fatalf("no %s record: %v", typ, err)
	}
	return evs[0]
}

// TestDevicesTrustExpiresAndNewDevice: a trusted device skips the second
// factor until TrustedDeviceTTL, then asks it again; a login from another
// User-Agent scores new_device (20) once the user has a history, a
// version change of the same browser does not.
func TestDevicesTrustExpiresAndNewDevice(t *testing.T) {
	t.Parallel()
	e := devicesEnv(t, authsvc.Config{TrustedDeviceTTL: 48 * time.Hour}, nil)
	access := e.session(t, "alice@acme.test", "acme").str("access_token")
	_, recovery := enrollTOTP(t, e, access)
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
	login := func(token, ua string) answer {
		t.Helper()
		body := map[string]any{"email": "alice@acme.test", "password": authsvc.DemoPassword}
		if token != "" {
			body["device_token"] = token
		}
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/login", ua: ua, body: body})
		if a.Status != 200 {
			t.Fatalf("login: %s", a.Raw)
		}
		return a
	}
	l := login("", firefox)
	v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", ua: firefox,
		body: map[string]any{"login_token": l.str("login_token"), "code": recovery[0], "trust_device": true}})
	dev, _ := v.data()["device"].(map[string]any)
	token, _ := dev["token"].(string)
	if v.Status != 200 || token == "" || dev["name"] != "Firefox on Linux" {
		t.Fatalf("verify with trust_device: %s", v.Raw)
	}
	if ev := devicesLastAudit(t, e, store.EventDeviceTrusted); ev.SubjectID != dev["id"] || ev.Details["name"] != "Firefox on Linux" {
		t.Fatalf("device.trusted record = %+v", ev)
	}
	e.clock.Add(47 * time.Hour)
	if a := login(token, firefox); a.data()["mfa_required"] != false {
		t.Fatalf("login with the device before it expires: %s", a.Raw)
	}
	// A newer version of the same browser is the same device: no signal.
	if ev := devicesLastAudit(t, e, store.EventLoginSucceeded); ev.Details["risk_score"] != "" || ev.Details["trusted_device"] != dev["id"] {
		t.Fatalf("trusted login's record = %+v", ev.Details)
	}
	l = login("", "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0")
	if ev := devicesLastAudit(t, e, store.EventLoginSucceeded); ev.Details["risk_score"] != "" {
		t.Fatalf("a browser update scored: %+v", ev.Details)
	}
	l = login("", "curl/8.5.0")
	if ev := devicesLastAudit(t, e, store.EventLoginSucceeded); ev.Details["risk_score"] != "20" || ev.Details["risk_signals"] != "new_device" {
		t.Fatalf("a new device's record = %+v", ev.Details)
	}
	e.clock.Add(2 * time.Hour)
	if a := login(token, firefox); a.data()["mfa_required"] != true {
		t.Fatalf("login with an expired device: %s", a.Raw)
	}
}

// TestDevicesRiskSignalsHook: the security monitor's score is added to the
// login's (for this address and user): 100 refuses (audited with the
// signals it named), 40 on a new network steps a user without a factor of
// their own up to a code by mail.
func TestDevicesRiskSignalsHook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []string
	e := devicesEnv(t, authsvc.Config{}, func(_ context.Context, ip, userID string) (int, []string) {
		mu.Lock()
		asked = append(asked, ip+" "+userID)
		mu.Unlock()
		switch ip {
		case "203.0.113.1":
			return 100, []string{"blocked_address"}
		case "203.0.113.2":
			return 40, []string{"flagged_address"}
		case "203.0.113.3":
			return 500, nil // clamped, named security_event
		}
		return 0, nil
	})
	login := func(ip string) answer {
		t.Helper()
		return e.do(t, req{method: "POST", path: "/api/v1/auth/login", ip: ip,
			body: map[string]any{"email": "bob@globex.test", "password": authsvc.DemoPassword}})
	}
	if a := login("127.0.0.1"); a.Status != 200 || a.data()["mfa_required"] != false {
		t.Fatalf("first login: %s", a.Raw)
	}
	a := login("203.0.113.1")
	if a.Status != 401 || a.code() != "UNAUTHENTICATED" || a.data() != nil {
		t.Fatalf("login from a blocked address: %s", a.Raw)
	}
	ev := devicesLastAudit(t, e, store.EventLoginRiskRefused)
	if ev.Details["score"] != "100" || ev.Details["signals"] != "new_network,blocked_address" || ev.IP != "203.0.113.1" {
		t.Fatalf("risk refusal record = %+v", ev)
	}
	a = login("203.0.113.2")
	if a.Status != 200 || a.data()["mfa_required"] != true {
		t.Fatalf("login from a flagged address on a new network: %s", a.Raw)
	}
	if ms, _ := a.data()["mfa_methods"].([]any); len(ms) != 1 || ms[0] != "email" {
		t.Fatalf("mfa_methods of a stepped-up user without a factor: %s", a.Raw)
	}
	if a = login("203.0.113.3"); a.Status != 401 {
		t.Fatalf("a hook score over 100: %s", a.Raw)
	}
	if ev := devicesLastAudit(t, e, store.EventLoginRiskRefused); ev.Details["score"] != "100" || ev.Details["signals"] != "new_network,security_event" {
		t.Fatalf("clamped refusal record = %+v", ev.Details)
	}
	u, err := e.svc.Store().GetUserByEmail(context.Background(), "bob@globex.test")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(asked, "203.0.113.2 "+u.ID) {
		t.Fatalf("the hook was asked %v", asked)
	}
}

// TestDevicesRevokeFromTheDevice: revoking the device whose cookie the
// request carries clears the cookie; revoking another leaves it.
func TestDevicesRevokeFromTheDevice(t *testing.T) {
	t.Parallel()
	e := devicesEnv(t, authsvc.Config{}, nil)
	access := e.session(t, "alice@acme.test", "acme").str("access_token")
	_, recovery := enrollTOTP(t, e, access)
	trust := func(code string) (string, string) {
		t.Helper()
		l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", body: map[string]any{"login_token": l.str("login_token"), "code": code, "trust_device": true}})
		dev, _ := v.data()["device"].(map[string]any)
		id, _ := dev["id"].(string)
		token, _ := dev["token"].(string)
		if v.Status != 200 || id == "" || token == "" {
			t.Fatalf("trust: %s", v.Raw)
		}
		return id, token
	}
	id1, token1 := trust(recovery[0])
	id2, _ := trust(recovery[1])
	revoke := func(id string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("DELETE", "/api/v1/auth/devices/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+access)
		r.AddCookie(&http.Cookie{Name: "erp_device", Value: token1})
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("DELETE %s: %d %s", id, w.Code, w.Body)
		}
		return w
	}
	if w := revoke(id2); w.Header().Get("Set-Cookie") != "" {
		t.Fatalf("revoking another device touched the cookie: %v", w.Header()["Set-Cookie"])
	}
	w := revoke(id1)
	if sc := w.Header().Get("Set-Cookie"); !strings.HasPrefix(sc, "erp_device=;") || !strings.Contains(sc, "Max-Age=0") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("revoking this device: Set-Cookie %q", sc)
	}
}

// TestDevicesSecureCookie: with an https public URL the device cookie is
// __Host-erp_device, Secure; a login presenting it skips the second factor
// (and the plain-http name is not read).
func TestDevicesSecureCookie(t *testing.T) {
	t.Parallel()
	e := devicesEnv(t, authsvc.Config{PublicURL: "https://erp.example"}, nil)
	access := e.session(t, "alice@acme.test", "acme").str("access_token")
	_, recovery := enrollTOTP(t, e, access)
	l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", body: map[string]any{"login_token": l.str("login_token"), "code": recovery[0], "trust_device": true}})
	sc := v.Header.Get("Set-Cookie")
	dev, _ := v.data()["device"].(map[string]any)
	token, _ := dev["token"].(string)
	if !strings.HasPrefix(sc, "__Host-erp_device="+token+";") || !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") ||
		!strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/") || strings.Contains(sc, "Domain=") {
		t.Fatalf("Set-Cookie %q", sc)
	}
	login := func(name string) answer {
		t.Helper()
		r := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(`{"email":"alice@acme.test","password":"`+authsvc.DemoPassword+`"}`))
		r.Header.Set("Content-Type", "application/json")
		r.AddCookie(&http.Cookie{Name: name, Value: token})
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		a := answer{Status: w.Code, Header: w.Header(), Raw: w.Body.String()}
		if err := json.Unmarshal(w.Body.Bytes(), &a.Body); err != nil || a.Status != 200 {
			t.Fatalf("login: %d %s", w.Code, w.Body)
		}
		return a
	}
	if a := login("__Host-erp_device"); a.data()["mfa_required"] != false {
		t.Fatalf("login with the secure cookie: %s", a.Raw)
	}
	if a := login("erp_device"); a.data()["mfa_required"] != true {
		t.Fatalf("login with the plain cookie name over https: %s", a.Raw)
	}
}

// TestDevicesBounded: a user keeps at most 20 active trusted devices;
// trusting one more revokes the least recently used (audited).
func TestDevicesBounded(t *testing.T) {
	t.Parallel()
	e := devicesEnv(t, authsvc.Config{TOTPAttemptLimit: 100}, nil)
	access := e.session(t, "alice@acme.test", "acme").str("access_token")
	secret, _ := enrollTOTP(t, e, access)
	var ids []string
	for range 21 {
		e.clock.Add(31 * time.Second) // a new TOTP step: each code is accepted once
		l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify",
			body: map[string]any{"login_token": l.str("login_token"), "code": independentCode(t, secret, e.clock.Now()), "trust_device": true}})
		dev, _ := v.data()["device"].(map[string]any)
		id, _ := dev["id"].(string)
		if v.Status != 200 || id == "" {
			t.Fatalf("trust: %s", v.Raw)
		}
		ids = append(ids, id)
	}
	u, err := e.svc.Store().GetUserByEmail(context.Background(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.Store().ListTrustedDevices(context.Background(), u.ID, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 20 || slices.ContainsFunc(list, func(d store.TrustedDevice) bool { return d.ID == ids[0] }) {
		t.Fatalf("%d active devices, the first one among them: %v", len(list), slices.ContainsFunc(list, func(d store.TrustedDevice) bool { return d.ID == ids[0] }))
	}
	if ev := devicesLastAudit(t, e, store.EventDeviceRevoked); ev.SubjectID != ids[0] || ev.Details["reason"] != "replaced" {
		t.Fatalf("device.revoked record = %+v", ev)
	}
}
