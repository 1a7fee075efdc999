package events

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	ev "github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/httpt"
)

// Until the auth service's outbox publishes its audit records, these tests
// publish the auth events themselves, with the outbox's types and data
// shape; everything after the stream (the monitor, its actions, both
// instances' blocklists) is the running binary.

// A burst of failed logins from one address emits
// erp.security.password_guessing on the stream and blocks that address on
// both instances within 2 s; other addresses are served; the block ends.
func TestSecurityPasswordGuessingBlocksOnEveryInstance(t *testing.T) {
	s := secStart(t, 2)
	const attacker, bystander = "203.0.113.7", "203.0.113.8"
	if r := secFrom(t, s.b, attacker); r.StatusCode != http.StatusOK {
		t.Fatalf("before the burst: %d %s", r.StatusCode, r.Body)
	}
	for i := range 5 {
		s.secAuthEvent(t, "erp.auth.login.failed", "", "", secFailed("", "guess"+strconv.Itoa(i%2)+"@nowhere.test", attacker))
	}
	sent := time.Now()
	_, f := s.secWaitFinding(t, "password_guessing", 10*time.Second, func(_ *ev.Event, f map[string]any) bool {
		return f["ip"] == attacker && f["scope"] == "address"
	})
	if f["severity"] != "high" || f["count"] != float64(5) || f["action"] != "block_ip" || f["window"] != "1m0s" || f["until"] == nil {
		t.Fatalf("finding = %v", f)
	}
	ra := secWaitBlocked(t, s.a, attacker, true, 2*time.Second-time.Since(sent)+time.Second)
	rb := secWaitBlocked(t, s.b, attacker, true, 2*time.Second-time.Since(sent)+time.Second)
	el := time.Since(sent)
	if el > 3*time.Second {
		t.Fatalf("blocked on both instances only after %s", el)
	}
	t.Logf("blocked on both instances %s after the burst was published", el.Round(time.Millisecond))
	for _, r := range []*httpt.Response{ra, rb} {
		e := r.Envelope(t)
		if e.Code() != "FORBIDDEN" || e.Errors[0].Context["reason"] != "address_blocked" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("blocked answer: %d %s %v", r.StatusCode, r.Body, r.Header)
		}
		if strings.Contains(string(r.Body), "password_guessing") {
			t.Fatalf("the answer names the rule: %s", r.Body)
		}
	}
	// Every route: the login itself too.
	lr := httpt.Do(t, http.MethodPost, s.b.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": demoauth.Password}),
		map[string]string{"X-Forwarded-For": attacker})
	if lr.StatusCode != http.StatusForbidden {
		t.Fatalf("login from the blocked address: %d %s", lr.StatusCode, lr.Body)
	}
	for _, in := range []string{s.a.URL, s.b.URL} {
		r := httpt.Get(t, in+"/.well-known/jwks.json", map[string]string{"X-Forwarded-For": bystander})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("another address: %d %s", r.StatusCode, r.Body)
		}
	}
	// The block (4 s) ends on both.
	secWaitBlocked(t, s.a, attacker, false, 10*time.Second)
	secWaitBlocked(t, s.b, attacker, false, 10*time.Second)
	m := httpt.Get(t, s.a.AdminURL+"/metrics", nil)
	for _, want := range []string{`erpgate_security_events_total{rule="password_guessing",severity="high"}`, `erpgate_security_blocked_requests_total`} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Failures on many accounts from one address: credential stuffing.
func TestSecurityCredentialStuffing(t *testing.T) {
	s := secStart(t, 1)
	const ip = "198.51.100.23"
	for i := range 4 {
		s.secAuthEvent(t, "erp.auth.login.failed", "", "", secFailed("", "victim"+strconv.Itoa(i)+"@acme.test", ip))
	}
	e, f := s.secWaitFinding(t, "credential_stuffing", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["ip"] == ip })
	if f["count"] != float64(4) || f["action"] != "block_ip" || f["severity"] != "high" || e.CompanyID != "" {
		t.Fatalf("finding = %v, company %q", f, e.CompanyID)
	}
	secWaitBlocked(t, s.a, ip, true, 2*time.Second)
}

func secLoginID(t *testing.T, base, email, password string) (*httpt.Response, string) {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": email, "password": password}), nil)
	var d struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	_ = json.Unmarshal(r.Envelope(t).Data, &d)
	return r, d.User.ID
}

// Failed logins on one account lock it (lock_account configured): its
// login is refused as a wrong password is, until an admin unlocks it.
func TestSecurityLockAccountAndAdminUnlock(t *testing.T) {
	s := secStart(t, 1)
	root := demoauth.Login(t, s.a.URL, "root@erpgate.local", "acme")
	ok, bobID := secLoginID(t, s.a.URL, "bob@globex.test", demoauth.Password)
	if ok.StatusCode != 200 || bobID == "" {
		t.Fatalf("bob's login: %d %s", ok.StatusCode, ok.Body)
	}
	wrong, _ := secLoginID(t, s.a.URL, "bob@globex.test", "not-his-password")
	for i := range 3 {
		s.secAuthEvent(t, "erp.auth.login.failed", "", "", secFailed(bobID, "bob@globex.test", "192.0.2."+strconv.Itoa(10+i)))
	}
	e, f := s.secWaitFinding(t, "password_guessing", 10*time.Second, func(_ *ev.Event, f map[string]any) bool {
		return f["scope"] == "account" && f["user_id"] == bobID
	})
	// In bob's company (globex's admins see it), not acme's.
	if f["action"] != "lock_account" || e.CompanyID != "globex" {
		t.Fatalf("finding = %v in %q", f, e.CompanyID)
	}
	locked, _ := secLoginID(t, s.a.URL, "bob@globex.test", demoauth.Password)
	if locked.StatusCode != wrong.StatusCode || string(locked.Envelope(t).Errors[0].Message) != wrong.Envelope(t).Errors[0].Message ||
		locked.Envelope(t).Code() != wrong.Envelope(t).Code() {
		t.Fatalf("locked login = %d %s; wrong password = %d %s", locked.StatusCode, locked.Body, wrong.StatusCode, wrong.Body)
	}
	u := httpt.Get(t, s.a.URL+"/api/v1/admin/users/"+bobID, demoauth.Bearer(root.Access))
	if u.StatusCode != 200 || !strings.Contains(string(u.Body), `"locked":true`) {
		t.Fatalf("admin view: %d %s", u.StatusCode, u.Body)
	}
	un := httpt.Do(t, http.MethodPatch, s.a.URL+"/api/v1/admin/users/"+bobID, httpt.JSON(t, map[string]bool{"locked": false}), demoauth.Bearer(root.Access))
	if un.StatusCode != 200 || !strings.Contains(string(un.Body), `"locked":false`) {
		t.Fatalf("unlock: %d %s", un.StatusCode, un.Body)
	}
	if again, _ := secLoginID(t, s.a.URL, "bob@globex.test", demoauth.Password); again.StatusCode != 200 {
		t.Fatalf("login after unlock: %d %s", again.StatusCode, again.Body)
	}
}

func secClaims(t *testing.T, jwt string) (sub, sid string) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Sub, Sid string }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sub, c.Sid
}

// A refresh-token reuse emits erp.security.refresh_token_reuse in the
// session's company with revoke_family: the auth service revoked the
// family already; for a session still alive (an event from another
// instance's auth service that did not revoke it) the monitor revokes it.
func TestSecurityRefreshTokenReuse(t *testing.T) {
	s := secStart(t, 1)
	alice := demoauth.Login(t, s.a.URL, "alice@acme.test", "acme")
	sub, sid := secClaims(t, alice.Access)
	refresh := func(tok string) *httpt.Response {
		return httpt.Do(t, http.MethodPost, s.a.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": tok}), nil)
	}
	if r := refresh(alice.Refresh); r.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.Body)
	}
	if r := refresh(alice.Refresh); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reuse: %d %s", r.StatusCode, r.Body)
	}
	data := map[string]any{"actor_id": sub, "subject_id": sid, "ip": "192.0.2.50", "user_agent": "x", "request_id": "", "details": map[string]string{}}
	s.secAuthEvent(t, "erp.auth.token.reuse_detected", "acme", sid, data)
	e, f := s.secWaitFinding(t, "refresh_token_reuse", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["user_id"] == sub })
	if e.CompanyID != "acme" || f["severity"] != "high" || f["action"] != "revoke_family" {
		t.Fatalf("finding = %v in %q", f, e.CompanyID)
	}

	bob := demoauth.Login(t, s.a.URL, "bob@globex.test", "globex")
	bsub, bsid := secClaims(t, bob.Access)
	s.secAuthEvent(t, "erp.auth.token.reuse_detected", "globex", bsid,
		map[string]any{"actor_id": bsub, "subject_id": bsid, "ip": "192.0.2.51", "details": map[string]string{}})
	s.secWaitFinding(t, "refresh_token_reuse", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["user_id"] == bsub })
	if r := refresh(bob.Refresh); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bob's family after revoke_family: refresh = %d %s", r.StatusCode, r.Body)
	}
}

// An API key used from a network never seen for it: the edge publishes
// erp.auth.api_key.used once per new network (not per request), and the
// monitor emits erp.security.api_key_new_network in the key's company
// from the second network on (the first is the key's first use).
func TestSecurityAPIKeyNewNetwork(t *testing.T) {
	s := secStart(t, 1)
	alice := demoauth.Login(t, s.a.URL, "alice@acme.test", "acme")
	resp := httpt.Do(t, http.MethodPost, s.a.URL+"/api/v1/auth/api-keys", httpt.JSON(t, map[string]any{"name": "sec", "scope": "invoices:read"}), demoauth.Bearer(alice.Access))
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if env := resp.Envelope(t); resp.StatusCode != 201 || json.Unmarshal(env.Data, &key) != nil || key.Key == "" {
		t.Fatalf("create API key: %d %s", resp.StatusCode, resp.Body)
	}
	use := func(ip string) {
		r := httpt.Get(t, s.a.URL+"/whoami", map[string]string{"X-API-Key": key.Key, "X-Forwarded-For": ip})
		if r.StatusCode != 200 {
			t.Fatalf("API key from %s: %d %s", ip, r.StatusCode, r.Body)
		}
	}
	for range 5 {
		use("192.0.2.1")
		use("192.0.2.200") // same /24
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.secCount("erp.auth.api_key.used") < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	use("198.51.100.5")
	e, f := s.secWaitFinding(t, "api_key_new_network", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["ip"] == "198.51.100.5" })
	if e.CompanyID != "acme" || f["severity"] != "medium" || f["api_key_id"] == "" || f["api_key_id"] == nil {
		t.Fatalf("finding = %v in %q", f, e.CompanyID)
	}
	if n := s.secCount("erp.auth.api_key.used"); n != 2 {
		t.Fatalf("%d erp.auth.api_key.used events for 11 requests from 2 networks; want 2", n)
	}
	if n := s.secCount("erp.security.api_key_new_network"); n != 1 {
		t.Fatalf("%d api_key_new_network findings; want 1", n)
	}
}

// A login from a user agent and from a network never seen for the user.
func TestSecurityNewDeviceAndNetwork(t *testing.T) {
	s := secStart(t, 1)
	ok := func(ua, ip string) {
		s.secAuthEvent(t, "erp.auth.login.succeeded", "", "", map[string]any{"actor_id": "user-sec-1", "ip": ip, "user_agent": ua,
			"details": map[string]string{"mfa_required": "false"}})
	}
	ok("Firefox/130", "192.0.2.10")
	ok("Firefox/130", "192.0.2.11")
	ok("Safari/18", "192.0.2.12")
	_, f := s.secWaitFinding(t, "new_device", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["user_id"] == "user-sec-1" })
	if f["severity"] != "low" || f["action"] != nil {
		t.Fatalf("new_device = %v", f)
	}
	ok("Safari/18", "203.0.113.99")
	_, f = s.secWaitFinding(t, "new_network", 10*time.Second, func(_ *ev.Event, f map[string]any) bool { return f["ip"] == "203.0.113.99" })
	if f["severity"] != "medium" || f["user_id"] != "user-sec-1" {
		t.Fatalf("new_network = %v", f)
	}
	if n := s.secCount("erp.security.new_device"); n != 1 {
		t.Fatalf("%d new_device findings; want 1", n)
	}
}
