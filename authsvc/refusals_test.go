package authsvc_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// Every refusal of the auth service writes exactly one audit record: its
// type, a reason from the fixed list, the actor when known, the client's
// address — and none of the secrets the request carried.
func TestEveryRefusalIsAudited(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		const ip = "198.51.100.23"
		total := func() int64 {
			t.Helper()
			_, n, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		post := func(path, bearer string, body map[string]any) answer {
			t.Helper()
			return e.do(t, req{method: "POST", path: path, bearer: bearer, ip: ip, body: body})
		}

		alice := e.session(t, "alice@acme.test", "acme")
		aliceID := e.verifySub(t, alice.str("access_token"))
		bob := e.session(t, "bob@globex.test", "globex")
		bobID := e.verifySub(t, bob.str("access_token"))
		ended := e.session(t, "bob@globex.test", "globex")
		if a := post("/api/v1/auth/logout", ended.str("access_token"), map[string]any{}); a.Status != 200 {
			t.Fatalf("logout: %d %s", a.Status, a.Raw)
		}
		used := e.login(t, "bob@globex.test", authsvc.DemoPassword).str("login_token")
		if a := post("/api/v1/auth/select-company", "", map[string]any{"login_token": used, "company_id": "globex"}); a.Status != 200 {
			t.Fatalf("select-company: %d %s", a.Status, a.Raw)
		}
		bobLT := e.login(t, "bob@globex.test", authsvc.DemoPassword).str("login_token")
		aliceLT := e.login(t, "alice@acme.test", authsvc.DemoPassword).str("login_token")
		aliceLT2 := e.login(t, "alice@acme.test", authsvc.DemoPassword).str("login_token")
		forged := strings.Join([]string{"eyJhbGciOiJFZERTQSIsInR5cCI6ImxvZ2luK2p3dCJ9", "eyJzdWIiOiJ4In0", "c2lnbmF0dXJlLW9mLW5vLWtleQ"}, ".")
		rt := alice.str("refresh_token")
		unknownRefresh := rt[:len(rt)-43] + strings.Repeat("A", 43) // well-formed, never issued

		cases := []struct {
			name    string
			do      func() (answer, []string) // the refusal and the secrets it sent
			status  int
			typ     string
			reason  string
			actor   string
			company string
		}{
			{"select-company with a forged login token", func() (answer, []string) {
				return post("/api/v1/auth/select-company", "", map[string]any{"login_token": forged, "company_id": "acme"}), []string{forged}
			}, 401, store.EventCompanySelectRefused, authsvc.ReasonInvalidLoginToken, "", ""},
			{"select-company of another company", func() (answer, []string) {
				return post("/api/v1/auth/select-company", "", map[string]any{"login_token": bobLT, "company_id": "acme"}), []string{bobLT}
			}, 403, store.EventCompanySelectRefused, authsvc.ReasonNotMember, bobID, ""},
			{"replayed login token", func() (answer, []string) {
				return post("/api/v1/auth/select-company", "", map[string]any{"login_token": used, "company_id": "globex"}), []string{used}
			}, 401, store.EventLoginTokenReplayed, authsvc.ReasonAlreadyUsed, bobID, ""},
			{"switch-company to another company", func() (answer, []string) {
				return post("/api/v1/auth/switch-company", bob.str("access_token"), map[string]any{"company_id": "acme"}), []string{bob.str("access_token")}
			}, 403, store.EventCompanySwitchRefused, authsvc.ReasonNotMember, bobID, "globex"},
			{"switch-company of an ended session", func() (answer, []string) {
				return post("/api/v1/auth/switch-company", ended.str("access_token"), map[string]any{"company_id": "globex"}), []string{ended.str("access_token")}
			}, 401, store.EventCompanySwitchRefused, authsvc.ReasonSessionEnded, bobID, "globex"},
			{"unknown refresh token", func() (answer, []string) {
				return post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": unknownRefresh}), []string{unknownRefresh}
			}, 401, store.EventRefreshRefused, authsvc.ReasonUnknown, "", ""},
			{"malformed refresh token", func() (answer, []string) {
				return post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": "not-a-refresh-token!"}), []string{"not-a-refresh-token!"}
			}, 401, store.EventRefreshRefused, authsvc.ReasonMalformed, "", ""},
			{"refresh token of an ended session", func() (answer, []string) {
				return post("/api/v1/auth/refresh", "", map[string]any{"refresh_token": ended.str("refresh_token")}), []string{ended.str("refresh_token")}
			}, 401, store.EventRefreshRefused, authsvc.ReasonInactive, "", ""},
			{"no bearer token", func() (answer, []string) {
				return e.do(t, req{method: "GET", path: "/api/v1/auth/me", ip: ip}), nil
			}, 401, store.EventBearerRefused, authsvc.ReasonMissing, "", ""},
			{"a login token as bearer token", func() (answer, []string) {
				return e.do(t, req{method: "GET", path: "/api/v1/auth/me", ip: ip, bearer: aliceLT}), []string{aliceLT}
			}, 401, store.EventBearerRefused, authsvc.ReasonInvalid, "", ""},
			{"bearer token of an ended session", func() (answer, []string) {
				return e.do(t, req{method: "GET", path: "/api/v1/auth/sessions", ip: ip, bearer: ended.str("access_token")}), []string{ended.str("access_token")}
			}, 401, store.EventBearerRefused, authsvc.ReasonSessionEnded, bobID, "globex"},
			{"MFA with a forged login token", func() (answer, []string) {
				return e.verifyMFA(t, forged, "123456", ip), []string{forged, "123456"}
			}, 401, store.EventMFAFailed, authsvc.ReasonInvalidLoginToken, "", ""},
			{"MFA for a login that needs none", func() (answer, []string) {
				return e.verifyMFA(t, aliceLT2, "654321", ip), []string{aliceLT2, "654321"}
			}, 400, store.EventMFAFailed, authsvc.ReasonMFANotPending, aliceID, ""},
			{"MFA code that can't be one", func() (answer, []string) {
				return post("/api/v1/auth/mfa/totp/confirm", alice.str("access_token"), map[string]any{"code": "12x456"}), []string{alice.str("access_token"), "12x456"}
			}, 422, store.EventMFAFailed, authsvc.ReasonMalformedCode, aliceID, "acme"},
		}
		// A pending enrolment, so that confirm reaches the code.
		if a := post("/api/v1/auth/mfa/totp/enroll", alice.str("access_token"), nil); a.Status != 200 {
			t.Fatalf("enroll: %d %s", a.Status, a.Raw)
		}
		for _, tc := range cases {
			e.clock.Add(time.Second) // the record of this case is the one at this time
			before := total()
			a, secrets := tc.do()
			if a.Status != tc.status {
				t.Fatalf("%s: %d %s, want %d", tc.name, a.Status, a.Raw, tc.status)
			}
			if n := total(); n != before+1 {
				t.Fatalf("%s: %d audit records, want exactly 1", tc.name, n-before)
			}
			events, _, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{Since: e.clock.Now()}, store.Page{Limit: 2})
			if err != nil || len(events) != 1 {
				t.Fatalf("%s: %d records of this step (%v)", tc.name, len(events), err)
			}
			ev := events[0]
			if ev.Type != tc.typ || ev.Details["reason"] != tc.reason || ev.IP != ip || ev.ActorID != tc.actor || ev.CompanyID != tc.company || ev.RequestID == "" {
				t.Errorf("%s: record %+v, want type %s, reason %s, ip %s, actor %q, company %q", tc.name, ev, tc.typ, tc.reason, ip, tc.actor, tc.company)
			}
			raw, _ := json.Marshal(ev)
			for _, s := range secrets {
				if strings.Contains(string(raw), s) {
					t.Errorf("%s: the record holds a secret the request sent: %s", tc.name, raw)
				}
			}
		}
		if check, err := e.svc.VerifyAudit(ctx); err != nil || !check.OK {
			t.Fatalf("audit trail: %v %v", check, err)
		}
	})
}

// The refusals that need a second factor on: select-company before it,
// and a login token spent by a verified code and then sent again.
func TestMFARefusalsAreAudited(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		s := e.session(t, "alice@acme.test", "acme")
		sub := e.verifySub(t, s.str("access_token"))
		secret, _ := enrollTOTP(t, e, s.str("access_token"))
		e.clock.Add(30 * time.Second)
		lt := e.login(t, "alice@acme.test", authsvc.DemoPassword).str("login_token")
		last := func(typ string) (store.Event, int64) {
			t.Helper()
			events, n, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{Types: []string{typ}}, store.Page{Limit: 1})
			if err != nil || n == 0 {
				t.Fatalf("no %s record (%v)", typ, err)
			}
			return events[0], n
		}

		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", ip: "192.0.2.7", body: map[string]any{"login_token": lt, "company_id": "acme"}}); a.Status != 401 || a.code() != "MFA_REQUIRED" {
			t.Fatalf("select-company before MFA: %d %s", a.Status, a.Raw)
		}
		if ev, n := last(store.EventCompanySelectRefused); n != 1 || ev.ActorID != sub || ev.Details["reason"] != authsvc.ReasonMFAPending || ev.IP != "192.0.2.7" {
			t.Fatalf("select refusal: %d %+v", n, ev)
		}
		code := independentCode(t, secret, e.clock.Now())
		if a := e.verifyMFA(t, lt, code, "192.0.2.7"); a.Status != 200 {
			t.Fatalf("verify: %d %s", a.Status, a.Raw)
		}
		e.clock.Add(30 * time.Second)
		if a := e.verifyMFA(t, lt, independentCode(t, secret, e.clock.Now()), "192.0.2.8"); a.Status != 401 || a.code() != "TOKEN_REVOKED" {
			t.Fatalf("spent login token: %d %s", a.Status, a.Raw)
		}
		ev, n := last(store.EventLoginTokenReplayed)
		if n != 1 || ev.ActorID != sub || ev.Details["reason"] != authsvc.ReasonAlreadyUsed || ev.Details["step"] != "mfa_verify" || ev.IP != "192.0.2.8" {
			t.Fatalf("replay record: %d %+v", n, ev)
		}
		if raw, _ := json.Marshal(ev); strings.Contains(string(raw), lt) || strings.Contains(string(raw), code) {
			t.Fatalf("the record holds a secret: %s", raw)
		}
	})
}
