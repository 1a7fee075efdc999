package authsvc_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// oracleHOTP is RFC 4226's HOTP(K, C), written out here as the tests'
// oracle (the service computes codes with pquerna/otp): HMAC over the
// 8-byte big-endian counter, dynamic truncation, modulo 10^digits.
func oracleHOTP(newHash func() hash.Hash, key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(newHash, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// RFC 6238 Appendix B: the test vectors (8 digits, T0 = 0, X = 30 s). The
// oracle must give all of them; the service, which issues SHA-1 codes of
// 6 digits, must accept the SHA-1 ones' last 6 digits at their step.
func TestTOTPRFC6238Vectors(t *testing.T) {
	t.Parallel()
	seeds := map[string]struct {
		key []byte
		h   func() hash.Hash
	}{
		"SHA1":   {[]byte("12345678901234567890"), sha1.New},
		"SHA256": {[]byte("12345678901234567890123456789012"), sha256.New},
		"SHA512": {[]byte("1234567890123456789012345678901234567890123456789012345678901234"), sha512.New},
	}
	vectors := []struct {
		unix int64
		step uint64
		mode string
		code string
	}{
		{59, 0x1, "SHA1", "94287082"}, {59, 0x1, "SHA256", "46119246"}, {59, 0x1, "SHA512", "90693936"},
		{1111111109, 0x23523EC, "SHA1", "07081804"}, {1111111109, 0x23523EC, "SHA256", "68084774"}, {1111111109, 0x23523EC, "SHA512", "25091201"},
		{1111111111, 0x23523ED, "SHA1", "14050471"}, {1111111111, 0x23523ED, "SHA256", "67062674"}, {1111111111, 0x23523ED, "SHA512", "99943326"},
		{1234567890, 0x273EF07, "SHA1", "89005924"}, {1234567890, 0x273EF07, "SHA256", "91819424"}, {1234567890, 0x273EF07, "SHA512", "93441116"},
		{2000000000, 0x3F940AA, "SHA1", "69279037"}, {2000000000, 0x3F940AA, "SHA256", "90698825"}, {2000000000, 0x3F940AA, "SHA512", "38618901"},
		{20000000000, 0x27BC86AA, "SHA1", "65353130"}, {20000000000, 0x27BC86AA, "SHA256", "77737706"}, {20000000000, 0x27BC86AA, "SHA512", "47863826"},
	}
	for _, v := range vectors {
		t.Run(fmt.Sprintf("%d/%s", v.unix, v.mode), func(t *testing.T) {
			if uint64(v.unix/30) != v.step {
				t.Fatalf("step of %d = %#x, the RFC says %#x", v.unix, v.unix/30, v.step)
			}
			sd := seeds[v.mode]
			if got := oracleHOTP(sd.h, sd.key, v.step, 8); got != v.code {
				t.Fatalf("oracle TOTP = %s, want %s", got, v.code)
			}
			if v.mode == "SHA1" { // what erpgate issues: the same value, 6 digits
				if step, ok := authsvc.TOTPMatch(sd.key, v.code[2:], time.Unix(v.unix, 0)); !ok || uint64(step) != v.step {
					t.Fatalf("6-digit code %s: matched %v at step %#x, want step %#x", v.code[2:], ok, step, v.step)
				}
			}
		})
	}
}

// The service accepts a code of the current step and of one step either
// side (reporting which, for the replay guard), and no other.
func TestTOTPMatchSkew(t *testing.T) {
	t.Parallel()
	for i := range 50 {
		seed := sha256.Sum256([]byte{byte(i)})
		secret := seed[:20]
		now := time.Unix(1_700_000_000+int64(i)*7919, 0)
		cur := now.Unix() / 30
		codes := map[string]bool{}
		for d := int64(-1); d <= 1; d++ {
			codes[oracleHOTP(sha1.New, secret, uint64(cur+d), 6)] = true
		}
		for d := int64(-3); d <= 3; d++ {
			code := oracleHOTP(sha1.New, secret, uint64(cur+d), 6)
			step, ok := authsvc.TOTPMatch(secret, code, now)
			within := d >= -1 && d <= 1
			if d < -1 || d > 1 {
				if codes[code] { // the same 6 digits as an accepted step's (one in 10^6)
					continue
				}
			}
			if ok != within || (within && step != cur+d) {
				t.Fatalf("secret %d, step %+d: matched %v at %d, want %v at %d", i, d, ok, step, within, cur+d)
			}
		}
		wrong := oracleHOTP(sha1.New, secret, uint64(cur), 6)
		if _, ok := authsvc.TOTPMatch(secret, wrong[:5], now); ok {
			t.Fatal("a 5-digit prefix of the code matched")
		}
		if _, ok := authsvc.TOTPMatch(secret, oracleHOTP(sha1.New, secret, uint64(cur), 8), now); ok {
			t.Fatal("an 8-digit code matched")
		}
	}
}

// independentCode is the oracle's code of a base32 secret at a time.
func independentCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return oracleHOTP(sha1.New, raw, uint64(at.Unix()/30), 6)
}

// enrollTOTP turns TOTP on for the session's user and returns the secret
// and the recovery codes; the code it confirmed with is of the clock's step.
func enrollTOTP(t testing.TB, e *env, access string) (string, []string) {
	t.Helper()
	a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/totp/enroll", bearer: access})
	if a.Status != 200 {
		t.Fatalf("enroll: %d %s", a.Status, a.Raw)
	}
	secret := a.str("secret")
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil || len(raw)*8 < 160 {
		t.Fatalf("secret %q: %d bits, %v", secret, len(raw)*8, err)
	}
	u, err := url.Parse(a.str("otpauth_uri"))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != secret ||
		u.Query().Get("digits") != "6" || u.Query().Get("period") != "30" || u.Query().Get("algorithm") != "SHA1" {
		t.Fatalf("otpauth uri %q", a.str("otpauth_uri"))
	}
	if iss := u.Query().Get("issuer"); iss == "" || !strings.HasPrefix(u.Path, "/"+iss+":") || len(u.Path) == len(iss)+2 {
		t.Fatalf("otpauth uri %q: the label is not issuer:account", a.str("otpauth_uri"))
	}
	c := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/totp/confirm", bearer: access,
		body: map[string]any{"code": independentCode(t, secret, e.clock.Now())}})
	if c.Status != 200 || c.data()["enabled"] != true {
		t.Fatalf("confirm: %d %s", c.Status, c.Raw)
	}
	var codes []string
	for _, v := range c.data()["recovery_codes"].([]any) {
		codes = append(codes, v.(string))
	}
	if len(codes) != authsvc.RecoveryCodeCount {
		t.Fatalf("%d recovery codes", len(codes))
	}
	return secret, codes
}

func (e *env) verifyMFA(t testing.TB, loginToken, code, ip string) answer {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", ip: ip, body: map[string]any{"login_token": loginToken, "code": code}})
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		// The walk-through makes more failed attempts than the default limit.
		e := newEnv(t, envOpts{external: external, cfg: authsvc.Config{TOTPAttemptLimit: 20}})
		ctx := context.Background()
		s := e.session(t, "alice@acme.test", "acme")
		access := s.str("access_token")
		sub := e.verifySub(t, access)

		// Pending enrolment: not asked at login yet; a wrong code does not confirm.
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/totp/enroll", bearer: access})
		if a.Status != 200 {
			t.Fatalf("enroll: %d %s", a.Status, a.Raw)
		}
		if l := e.login(t, "alice@acme.test", authsvc.DemoPassword); l.data()["mfa_required"] != false {
			t.Fatal("a pending enrolment is asked at login")
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/totp/confirm", bearer: access, body: map[string]any{"code": "000000"}}); a.Status != 401 {
			t.Fatalf("confirm with a wrong code: %d %s", a.Status, a.Raw)
		}
		secret, recovery := enrollTOTP(t, e, access)
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/totp/enroll", bearer: access}); a.Status != 409 || a.code() != "CONFLICT" {
			t.Fatalf("enroll while on: %d %s", a.Status, a.Raw)
		}
		// Sealed at rest.
		tp, err := e.svc.Store().GetTOTP(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
		if bytes.Contains(tp.SealedSecret, raw) || bytes.Contains(tp.SealedSecret, []byte(secret)) {
			t.Fatal("the TOTP secret is stored in the clear")
		}

		// Login now needs the second factor.
		l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		if l.data()["mfa_required"] != true {
			t.Fatalf("login after confirm: %s", l.Raw)
		}
		sel := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": l.str("login_token"), "company_id": "acme"}})
		if sel.Status != 401 || sel.code() != "MFA_REQUIRED" {
			t.Fatalf("select-company before verify: %d %s", sel.Status, sel.Raw)
		}
		// The code confirm used (this step) was accepted once: refused now.
		if v := e.verifyMFA(t, l.str("login_token"), independentCode(t, secret, e.clock.Now()), ""); v.Status != 401 {
			t.Fatalf("replayed confirm code: %d %s", v.Status, v.Raw)
		}
		// Next step: an independent implementation's code is accepted once…
		e.clock.Add(30 * time.Second)
		code := independentCode(t, secret, e.clock.Now())
		v := e.verifyMFA(t, l.str("login_token"), code, "")
		if v.Status != 200 || v.data()["method"] != "totp" {
			t.Fatalf("verify: %d %s", v.Status, v.Raw)
		}
		// …and refused the second time, from another login too.
		l2 := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		if v := e.verifyMFA(t, l2.str("login_token"), code, "192.0.2.77"); v.Status != 401 || v.code() != "UNAUTHENTICATED" {
			t.Fatalf("replayed code: %d %s", v.Status, v.Raw)
		}
		// The pending token can't be verified twice; the verified one selects.
		if v := e.verifyMFA(t, l.str("login_token"), independentCode(t, secret, e.clock.Now().Add(30*time.Second)), ""); v.Status != 401 || v.code() != "TOKEN_REVOKED" {
			t.Fatalf("second verify of one login token: %d %s", v.Status, v.Raw)
		}
		sel = e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": v.str("login_token"), "company_id": "acme"}})
		if sel.Status != 200 {
			t.Fatalf("select-company after verify: %d %s", sel.Status, sel.Raw)
		}
		// One step of skew either way, not two.
		e.clock.Add(90 * time.Second)
		if v := e.verifyMFA(t, l2.str("login_token"), independentCode(t, secret, e.clock.Now().Add(-60*time.Second)), ""); v.Status != 401 {
			t.Fatalf("a code two steps old: %d %s", v.Status, v.Raw)
		}
		if v := e.verifyMFA(t, l2.str("login_token"), independentCode(t, secret, e.clock.Now().Add(-30*time.Second)), ""); v.Status != 200 {
			t.Fatalf("a code one step old: %d %s", v.Status, v.Raw)
		}

		// Recovery codes work once, in any case and spacing.
		l3 := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		if v := e.verifyMFA(t, l3.str("login_token"), recovery[0], ""); v.Status != 200 || v.data()["method"] != "recovery_code" {
			t.Fatalf("recovery code: %d %s", v.Status, v.Raw)
		}
		l4 := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		if v := e.verifyMFA(t, l4.str("login_token"), recovery[0], ""); v.Status != 401 {
			t.Fatalf("recovery code used twice: %d %s", v.Status, v.Raw)
		}
		if v := e.verifyMFA(t, l4.str("login_token"), strings.ToUpper(strings.ReplaceAll(recovery[1], "-", " ")), ""); v.Status != 200 {
			t.Fatalf("second recovery code: %d %s", v.Status, v.Raw)
		}

		// Turning it off needs a current code.
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/mfa/totp", bearer: access, body: map[string]any{}}); a.Status != 422 {
			t.Fatalf("delete without code: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/mfa/totp", bearer: access, body: map[string]any{"code": "123456"}}); a.Status != 401 {
			t.Fatalf("delete with a wrong code: %d %s", a.Status, a.Raw)
		}
		e.clock.Add(30 * time.Second)
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/mfa/totp", bearer: access,
			body: map[string]any{"code": independentCode(t, secret, e.clock.Now())}}); a.Status != 200 {
			t.Fatalf("delete: %d %s", a.Status, a.Raw)
		}
		if l := e.login(t, "alice@acme.test", authsvc.DemoPassword); l.data()["mfa_required"] != false {
			t.Fatal("mfa still required after DELETE /mfa/totp")
		}

		// Every step is in the audit trail, and nothing secret is.
		events, _, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{UserID: sub}, store.Page{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		all, _ := json.Marshal(events)
		for _, ev := range events {
			seen[ev.Type] = true
		}
		for _, want := range []string{store.EventMFAEnrollStarted, store.EventMFAEnrolled, store.EventMFAFailed, store.EventMFAVerified,
			store.EventMFARecoveryUsed, store.EventMFADisabled, store.EventLoginSucceeded, store.EventCompanySelected} {
			if !seen[want] {
				t.Errorf("no %s event in %v", want, seen)
			}
		}
		for _, secretish := range append([]string{secret, code, authsvc.DemoPassword, l.str("login_token"), access}, recovery...) {
			if strings.Contains(string(all), secretish) || strings.Contains(e.logText(), secretish) {
				t.Fatalf("a secret (%.6s…) is in the audit trail or the logs", secretish)
			}
		}
		if check, err := e.svc.VerifyAudit(ctx); err != nil || !check.OK {
			t.Fatalf("audit chain: %v %v", check, err)
		}
	})
}

// logText is everything the service logged.
func (e *env) logText() string {
	var b strings.Builder
	for _, l := range e.logs.All() {
		b.WriteString(l.Message)
		for _, f := range l.Context {
			fmt.Fprintf(&b, " %s=%v%s", f.Key, f.Interface, f.String)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestTOTPParallelGuessing(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		s := e.session(t, "bob@globex.test", "globex")
		secret, _ := enrollTOTP(t, e, s.str("access_token"))
		e.clock.Add(30 * time.Second)
		valid := map[string]bool{}
		for d := -1; d <= 1; d++ {
			valid[independentCode(t, secret, e.clock.Now().Add(time.Duration(d)*30*time.Second))] = true
		}
		// Several logins (sessions), many addresses, all at once.
		var tokens []string
		for range 4 {
			tokens = append(tokens, e.login(t, "bob@globex.test", authsvc.DemoPassword).str("login_token"))
		}
		const attempts = 60
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		next := 0
		for i := range attempts {
			var guess string
			for {
				guess = fmt.Sprintf("%06d", next)
				next++
				if !valid[guess] {
					break
				}
			}
			wg.Go(func() {
				a := e.verifyMFA(t, tokens[i%len(tokens)], guess, fmt.Sprintf("198.51.100.%d", i))
				mu.Lock()
				statuses[a.Status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		limit := int(authsvc.Config{}.TOTPAttemptLimit)
		if limit == 0 {
			limit = 5 // the documented default
		}
		if statuses[401] != limit || statuses[429] != attempts-limit {
			t.Fatalf("parallel guesses: %v; want %d refused as wrong and the rest throttled", statuses, limit)
		}
		// The limit holds for the right code too, from a new address.
		var right string
		for c := range valid {
			right = c
		}
		if a := e.verifyMFA(t, tokens[0], right, "203.0.113.9"); a.Status != 429 || a.code() != "RATE_LIMITED" || a.Header.Get("Retry-After") == "" {
			t.Fatalf("right code after the limit: %d %s", a.Status, a.Raw)
		}
		events, total, err := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{Types: []string{store.EventMFAThrottled, store.EventMFAFailed}}, store.Page{Limit: 1})
		if err != nil || total != attempts+1 || len(events) != 1 {
			t.Fatalf("audited %d throttled or failed attempts (err %v), want %d", total, err, attempts+1)
		}
	})
}
