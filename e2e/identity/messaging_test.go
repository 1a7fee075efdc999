package identity_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var msgLinkRE = regexp.MustCompile(`(https?://[^\s"<>]+)/login#magic=([A-Za-z0-9_-]{43})`)

func msgMethods(a msgAnswer) []string {
	var out []string
	ms, _ := a.data["mfa_methods"].([]any)
	for _, m := range ms {
		s, _ := m.(string)
		out = append(out, s)
	}
	return out
}

// TestMessaging drives magic links and email and SMS codes through the
// binary, with mail read back from mailpit and SMS from a receiving
// provider, on Postgres and Redis.
func TestMessaging(t *testing.T) {
	st := msgStart(t)
	var secrets []string // every token and code seen: none may be logged

	t.Run("magic link signs in once", func(t *testing.T) {
		_, email := st.user(t)
		a := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": email})
		st.want(t, a, http.StatusAccepted, "")
		if a.data["sent"] != true || a.data["expires_in"] != float64(600) {
			t.Fatalf("magic link answer: %s", a.raw)
		}
		m := st.mp.WaitFor(t, email, 1)
		link := msgLinkRE.FindStringSubmatch(m.Text)
		if link == nil {
			t.Fatalf("no link in the mail: %q", m.Text)
		}
		if link[1] != st.in.Env["ERP_PUBLIC_URL"] {
			t.Fatalf("the link goes to %s, want the public URL %s", link[1], st.in.Env["ERP_PUBLIC_URL"])
		}
		if m.From.Address != "no-reply@erpgate.test" || !strings.Contains(m.HTML, "#magic="+link[2]) {
			t.Fatalf("mail from %q, HTML %q", m.From.Address, m.HTML)
		}
		token := link[2]
		secrets = append(secrets, token)
		a = st.call(t, http.MethodPost, "/api/v1/auth/magic-link/verify", "", map[string]any{"token": token})
		st.want(t, a, http.StatusOK, "")
		lt := a.str("login_token")
		if a.data["mfa_required"] == true { // a risk step-up: a code to the account's address
			if ms := msgMethods(a); !slices.Equal(ms, []string{"email"}) {
				t.Fatalf("step-up methods %v", ms)
			}
			c := st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt, "method": "email"})
			st.want(t, c, http.StatusOK, "")
			code := st.mailCode(t, email, 2)
			v := st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "email"})
			st.want(t, v, http.StatusOK, "")
			lt = v.str("login_token")
		}
		st.selectCompany(t, lt)
		// used once
		a = st.call(t, http.MethodPost, "/api/v1/auth/magic-link/verify", "", map[string]any{"token": token})
		st.want(t, a, http.StatusUnauthorized, "UNAUTHENTICATED")
		if !strings.Contains(a.env.Errors[0].Message, "invalid, expired or was already used") {
			t.Fatalf("reuse message: %s", a.raw)
		}
	})

	t.Run("unknown address: the same answer and no mail", func(t *testing.T) {
		_, known := st.user(t)
		unknown := strings.Replace(known, "@", "-nobody@", 1)
		u := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": unknown})
		k := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": known})
		st.want(t, u, k.status, "")
		if string(u.env.Data) != string(k.env.Data) {
			t.Fatalf("unknown address answered %s, a known one %s", u.env.Data, k.env.Data)
		}
		// the known address's mail was queued after the unknown's request
		st.mp.WaitFor(t, known, 1)
		if n := st.mp.Count(t, unknown); n != 0 {
			t.Fatalf("an unknown address received %d mails", n)
		}
		// a disabled account: the same answer, no mail, and its earlier link no longer works
		id, disabled := st.user(t)
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": disabled}), http.StatusAccepted, "")
		first := msgLinkRE.FindStringSubmatch(st.mp.WaitFor(t, disabled, 1).Text)
		if first == nil {
			t.Fatal("no link in the mail")
		}
		secrets = append(secrets, first[2])
		st.want(t, st.call(t, http.MethodPatch, "/api/v1/admin/users/"+id, st.root, map[string]any{"disabled": true}), http.StatusOK, "")
		d := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": disabled})
		if d.status != k.status || string(d.env.Data) != string(k.env.Data) {
			t.Fatalf("a disabled account answered %d %s", d.status, d.env.Data)
		}
		_, other := st.user(t)
		st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": other})
		st.mp.WaitFor(t, other, 1) // queued after the disabled account's request
		if n := st.mp.Count(t, disabled); n != 1 {
			t.Fatalf("a disabled account received %d mails, want only the one before", n)
		}
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/magic-link/verify", "", map[string]any{"token": first[2]}), http.StatusUnauthorized, "UNAUTHENTICATED")
	})

	t.Run("magic links are rate-limited per address", func(t *testing.T) {
		_, known := st.user(t)
		addr := strings.Replace(known, "@", "-limit@", 1) // unknown: no mail, same counting
		for i := range 5 {
			a := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": addr})
			if a.status != http.StatusAccepted {
				t.Fatalf("request %d: %s", i+1, a.raw)
			}
		}
		a := st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": addr})
		st.want(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
		if a.header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After: %v", a.header)
		}
	})

	t.Run("magic link bad input", func(t *testing.T) {
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": "not an address"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/magic-link", "", map[string]any{"email": "a@acme.test", "admin": true}), http.StatusBadRequest, "BAD_REQUEST")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/magic-link/verify", "", map[string]any{"token": ""}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		for _, tok := range []string{"short", strings.Repeat("A", 43), strings.Repeat("!", 43)} {
			a := st.call(t, http.MethodPost, "/api/v1/auth/magic-link/verify", "", map[string]any{"token": tok})
			st.want(t, a, http.StatusUnauthorized, "UNAUTHENTICATED")
		}
	})

	t.Run("email codes as a second factor", func(t *testing.T) {
		_, email := st.user(t)
		access := st.access(t, email)
		// unauthenticated enrolment
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/enroll", "", nil), http.StatusUnauthorized, "UNAUTHENTICATED")
		a := st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/enroll", access, nil)
		st.want(t, a, http.StatusOK, "")
		if a.data["sent"] != true || a.str("method") != "email" || a.str("destination") == email || !strings.HasSuffix(a.str("destination"), "@acme.test") {
			t.Fatalf("enroll answer: %s", a.raw)
		}
		code := st.mailCode(t, email, 1)
		secrets = append(secrets, code)
		// not on before it is confirmed
		if ms := msgMethods(st.passwordLogin(t, email)); len(ms) != 0 {
			t.Fatalf("pending enrolment asked at login: %v", ms)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": wrong}), http.StatusUnauthorized, "UNAUTHENTICATED")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": "12ab"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		a = st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": code})
		st.want(t, a, http.StatusOK, "")
		if a.data["enabled"] != true {
			t.Fatalf("confirm answer: %s", a.raw)
		}
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": code}), http.StatusConflict, "CONFLICT")

		login := st.passwordLogin(t, email)
		if login.data["mfa_required"] != true || !slices.Equal(msgMethods(login), []string{"email"}) {
			t.Fatalf("login with email codes on: %s", login.raw)
		}
		lt := login.str("login_token")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/select-company", "", map[string]any{"login_token": lt, "company_id": msgCompany}), http.StatusUnauthorized, "MFA_REQUIRED")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt, "method": "sms"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": "forged", "method": "email"}), http.StatusUnauthorized, "UNAUTHENTICATED")
		c := st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt, "method": "email"})
		st.want(t, c, http.StatusOK, "")
		if c.data["sent"] != true || c.str("method") != "email" {
			t.Fatalf("challenge answer: %s", c.raw)
		}
		code = st.mailCode(t, email, 2)
		secrets = append(secrets, code)
		wrong = "000000"
		if code == wrong {
			wrong = "111111"
		}
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": wrong, "method": "email"}), http.StatusUnauthorized, "UNAUTHENTICATED")
		v := st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "email"})
		st.want(t, v, http.StatusOK, "")
		if v.data["mfa_required"] != false || v.str("method") != "email" {
			t.Fatalf("verify answer: %s", v.raw)
		}
		st.selectCompany(t, v.str("login_token"))
		// replayed: with its login token (spent) and with a new one
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "email"}), http.StatusUnauthorized, "TOKEN_REVOKED")
		lt2 := st.passwordLogin(t, email).str("login_token")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt2, "code": code, "method": "email"}), http.StatusUnauthorized, "UNAUTHENTICATED")
		// sends are limited per login token
		for i := range 3 {
			st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt2, "method": "email"}), http.StatusOK, "")
			secrets = append(secrets, st.mailCode(t, email, 3+i))
		}
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt2, "method": "email"}), http.StatusTooManyRequests, "RATE_LIMITED")
		// turned off: logins ask nothing
		st.want(t, st.call(t, http.MethodDelete, "/api/v1/auth/mfa/email", access, nil), http.StatusOK, "")
		st.want(t, st.call(t, http.MethodDelete, "/api/v1/auth/mfa/email", access, nil), http.StatusNotFound, "NOT_FOUND")
		if l := st.passwordLogin(t, email); l.data["mfa_required"] != false {
			t.Fatalf("login after email codes were turned off: %s", l.raw)
		}
	})

	t.Run("SMS codes as a second factor", func(t *testing.T) {
		_, email := st.user(t)
		access := st.access(t, email)
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/sms/enroll", access, map[string]any{"phone": "0171 555 0123"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/sms/enroll", access, map[string]any{"phone": "+1 415 555 0123\r\nBcc: x"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		number := fmt.Sprintf("+1415%07d", rand.IntN(10_000_000)) // this test's own number
		a := st.call(t, http.MethodPost, "/api/v1/auth/mfa/sms/enroll", access, map[string]any{"phone": number[:5] + " " + number[5:8] + "-" + number[8:]})
		st.want(t, a, http.StatusOK, "")
		if a.str("destination") == number || !strings.HasSuffix(a.str("destination"), number[len(number)-2:]) || !strings.HasPrefix(a.str("destination"), "+1") {
			t.Fatalf("enroll answer shows %q for %s", a.str("destination"), number)
		}
		code := st.smsCode(t, number, 1)
		secrets = append(secrets, code)
		a = st.call(t, http.MethodPost, "/api/v1/auth/mfa/sms/confirm", access, map[string]any{"code": code})
		st.want(t, a, http.StatusOK, "")
		if a.data["enabled"] != true || a.str("phone") == number {
			t.Fatalf("confirm answer: %s", a.raw)
		}
		login := st.passwordLogin(t, email)
		if !slices.Equal(msgMethods(login), []string{"sms"}) {
			t.Fatalf("login with SMS codes on: %s", login.raw)
		}
		lt := login.str("login_token")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/challenge", "", map[string]any{"login_token": lt, "method": "sms"}), http.StatusOK, "")
		code = st.smsCode(t, number, 2)
		secrets = append(secrets, code)
		if body := st.sms.to(number)[1].Get("Body"); !strings.Contains(body, "#"+code) {
			t.Fatalf("SMS without the WebOTP line: %q", body)
		}
		// a code for another method does not pass
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "email"}), http.StatusUnprocessableEntity, "VALIDATION_FAILED")
		v := st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "sms"})
		st.want(t, v, http.StatusOK, "")
		st.selectCompany(t, v.str("login_token"))
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt, "code": code, "method": "sms"}), http.StatusUnauthorized, "TOKEN_REVOKED")
		// and with a new login token: the code was for the spent one
		lt2 := st.passwordLogin(t, email).str("login_token")
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/verify", "", map[string]any{"login_token": lt2, "code": code, "method": "sms"}), http.StatusUnauthorized, "UNAUTHENTICATED")
		st.sms.mu.Lock()
		bad := st.sms.bad
		st.sms.mu.Unlock()
		if bad != 0 {
			t.Fatalf("the provider refused %d requests (credential or URL)", bad)
		}
	})

	t.Run("wrong codes are throttled", func(t *testing.T) {
		_, email := st.user(t)
		access := st.access(t, email)
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/enroll", access, nil), http.StatusOK, "")
		code := st.mailCode(t, email, 1)
		secrets = append(secrets, code)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		for range 5 {
			st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": wrong}), http.StatusUnauthorized, "UNAUTHENTICATED")
		}
		// even the right code now waits
		st.want(t, st.call(t, http.MethodPost, "/api/v1/auth/mfa/email/confirm", access, map[string]any{"code": code}), http.StatusTooManyRequests, "RATE_LIMITED")
	})

	// Nothing secret reached the logs.
	logs := st.in.Logs()
	for _, s := range append(secrets, msgSMSSecret, msgSMTPSecret) {
		// a code is 6 digits: found as a number of its own, not inside a
		// timestamp's fraction or an id
		re := regexp.MustCompile(`(?:^|[^0-9A-Za-z.])` + regexp.QuoteMeta(s) + `(?:[^0-9A-Za-z]|$)`)
		if len(s) > 6 {
			re = regexp.MustCompile(regexp.QuoteMeta(s))
		}
		if s == "" || re.MatchString(logs) {
			t.Errorf("the logs contain a secret (%d chars)", len(s))
		}
	}
	if len(secrets) < 8 {
		t.Errorf("only %d secrets were collected: the subtests did not run through", len(secrets))
	}
}
