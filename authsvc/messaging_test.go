package authsvc_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

var messagingLinkRE = regexp.MustCompile(`/login#magic=([A-Za-z0-9_-]{43})`)

// messagingUser stores a user with a unique address (mailpit is shared).
func messagingUser(t *testing.T, e *env) store.User {
	t.Helper()
	u := store.User{ID: uuid.NewString(), Email: strings.ReplaceAll(testenv.Name(), "_", "-") + "@acme.test", PasswordHash: "unused",
		PasswordChangedAt: e.clock.Now(), CreatedAt: e.clock.Now()}
	if err := e.svc.Store().CreateUser(context.Background(), u, store.Event{Time: e.clock.Now(), Type: "test"}); err != nil {
		t.Fatal(err)
	}
	return u
}

// messagingAudit waits until a record of typ about the user (or, with
// userID "", any) exists and returns the newest.
func messagingAudit(t *testing.T, e *env, userID, typ string) store.Event {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		evs, _, err := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{UserID: userID, Types: []string{typ}}, store.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s record", typ)
		}
	}
}

// A magic link works for MagicLinkTTL on the service's clock, then never.
func TestMagicLinkExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{SMTPURL: testenv.SMTPURL(t), SMTPFrom: "tests <no-reply@erpgate.test>"}})
	mp := testenv.NewMailpit(t)
	u := messagingUser(t, e)
	link := func(n int) string {
		t.Helper()
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/magic-link", body: map[string]any{"email": u.Email}})
		if a.Status != 202 {
			t.Fatalf("magic link: %d %s", a.Status, a.Raw)
		}
		m := mp.WaitFor(t, u.Email, n)
		got := messagingLinkRE.FindStringSubmatch(m.Text)
		if got == nil {
			t.Fatalf("no link in %q", m.Text)
		}
		return got[1]
	}
	verify := func(tok string) answer {
		return e.do(t, req{method: "POST", path: "/api/v1/auth/magic-link/verify", body: map[string]any{"token": tok}})
	}
	fresh := link(1)
	e.clock.Add(authsvc.MagicLinkTTL - time.Second)
	if a := verify(fresh); a.Status != 200 || a.str("login_token") == "" {
		t.Fatalf("a link just within its lifetime: %d %s", a.Status, a.Raw)
	}
	old := link(2)
	e.clock.Add(authsvc.MagicLinkTTL)
	a := verify(old)
	if a.Status != 401 || a.code() != "UNAUTHENTICATED" {
		t.Fatalf("an expired link: %d %s", a.Status, a.Raw)
	}
	if ev := messagingAudit(t, e, "", store.EventMagicLinkFailed); ev.Details["reason"] != "unknown" && ev.Details["reason"] != "expired" {
		t.Fatalf("expired link recorded as %v", ev.Details)
	}
	if a := verify(fresh); a.Status != 401 || a.code() != "UNAUTHENTICATED" {
		t.Fatalf("a used link: %d %s", a.Status, a.Raw)
	}
	if ev := messagingAudit(t, e, "", store.EventMagicLinkFailed); ev.Details["reason"] != "already_used" {
		t.Fatalf("reused link recorded as %v", ev.Details)
	}
}

// An address without an account gets the same answer, and only a record
// of why nothing was sent.
func TestMagicLinkUnknownAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{SMTPURL: testenv.SMTPURL(t)}})
	addr := strings.ReplaceAll(testenv.Name(), "_", "-") + "@acme.test"
	a := e.do(t, req{method: "POST", path: "/api/v1/auth/magic-link", body: map[string]any{"email": addr}})
	if a.Status != 202 || a.data()["sent"] != true {
		t.Fatalf("unknown address: %d %s", a.Status, a.Raw)
	}
	ev := messagingAudit(t, e, "", store.EventMagicLinkSuppressed)
	if ev.Details["reason"] != "unknown_user" || ev.Details["email"] != addr {
		t.Fatalf("suppressed record %v", ev.Details)
	}
	evs, _, _ := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{Types: []string{store.EventMagicLinkSent}}, store.Page{Limit: 1})
	if len(evs) != 0 {
		t.Fatalf("a link was sent: %+v", evs)
	}
}

// Without a mail server the mail endpoints answer 503, and without an SMS
// provider the SMS ones.
func TestMessagingOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	access := e.session(t, "alice@acme.test", "acme").str("access_token")
	for _, r := range []req{
		{method: "POST", path: "/api/v1/auth/magic-link", body: map[string]any{"email": "alice@acme.test"}},
		{method: "POST", path: "/api/v1/auth/magic-link/verify", body: map[string]any{"token": strings.Repeat("a", 43)}},
		{method: "POST", path: "/api/v1/auth/mfa/email/enroll", bearer: access},
		{method: "POST", path: "/api/v1/auth/mfa/sms/enroll", bearer: access, body: map[string]any{"phone": "+14155550123"}},
	} {
		if a := e.do(t, r); a.Status != 503 || a.code() != "SERVICE_UNAVAILABLE" {
			t.Errorf("%s without mail/SMS: %d %s", r.path, a.Status, a.Raw)
		}
	}
}

// Bad SMTP and SMS URLs are configuration errors, named without their
// credentials.
func TestMessagingConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []authsvc.Config{
		{SMTPURL: "http://user:s3cret-pw@mail.example:25"},
		{SMTPURL: "smtp://user:s3cret-pw@mail.example:25/path"},
		{SMTPURL: "smtp://mail.example", SMTPFrom: "not an address"},
		{SMSURL: "https://AC1:s3cret-pw@sms.example/Messages.json"}, // no from
		{SMSURL: "ftp://AC1:s3cret-pw@sms.example/?from=%2B15550100"},
	} {
		_, err := authsvc.New(context.Background(), cfg, authsvc.Deps{Logger: zapNop()})
		if err == nil {
			t.Errorf("%+v was accepted", cfg)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// messagingMember creates an acme member with a unique address through the
// admin API and returns an access token of theirs.
func messagingMember(t *testing.T, e *env) (email, access string) {
	t.Helper()
	root := e.session(t, "root@erpgate.local", "acme").str("access_token")
	email = strings.ReplaceAll(testenv.Name(), "_", "-") + "@acme.test"
	a := e.do(t, req{method: "POST", path: "/api/v1/admin/users", bearer: root, body: map[string]any{"email": email, "password": authsvc.DemoPassword}})
	if a.Status != 201 {
		t.Fatalf("create user: %d %s", a.Status, a.Raw)
	}
	m := e.do(t, req{method: "PUT", path: "/api/v1/admin/memberships/acme/" + a.str("id"), bearer: root, body: map[string]any{"roles": []string{"viewer"}}})
	if m.Status >= 300 {
		t.Fatalf("membership: %d %s", m.Status, m.Raw)
	}
	return email, e.session(t, email, "acme").str("access_token")
}

// Of parallel confirmations with the right code, exactly one passes: the
// code is single use.
func TestMessageCodeSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{SMTPURL: testenv.SMTPURL(t)}})
	mp := testenv.NewMailpit(t)
	email, access := messagingMember(t, e)
	if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/email/enroll", bearer: access}); a.Status != 200 {
		t.Fatalf("enroll: %d %s", a.Status, a.Raw)
	}
	code := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(mp.WaitFor(t, email, 1).Text)
	if code == "" {
		t.Fatal("no code in the mail")
	}
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			statuses <- e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/email/confirm", bearer: access, body: map[string]any{"code": code}}).Status
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		switch st {
		case 200:
			ok++
		case 401, 409, 429: // refused: used, already on, or the attempts spent
		default:
			t.Errorf("status %d", st)
		}
	}
	if ok != 1 {
		t.Fatalf("%d confirmations passed, want exactly 1", ok)
	}
	// the code is gone: after turning the factor off and on again it is not the new one
	if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/mfa/email", bearer: access}); a.Status != 200 {
		t.Fatalf("delete: %d %s", a.Status, a.Raw)
	}
	if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/email/enroll", bearer: access}); a.Status != 200 {
		t.Fatalf("enroll again: %d %s", a.Status, a.Raw)
	}
	next := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(mp.WaitFor(t, email, 2).Text)
	if next != code {
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/email/confirm", bearer: access, body: map[string]any{"code": code}}); a.Status != 401 {
			t.Fatalf("the old code after a new enrolment: %d %s", a.Status, a.Raw)
		}
	}
	if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/email/confirm", bearer: access, body: map[string]any{"code": next}}); a.Status != 200 {
		t.Fatalf("the new code: %d %s", a.Status, a.Raw)
	}
}
