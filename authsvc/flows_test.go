package authsvc_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

func backends(t *testing.T, fn func(t *testing.T, external bool)) {
	t.Run("memory", func(t *testing.T) { t.Parallel(); fn(t, false) })
	t.Run("postgres+redis", func(t *testing.T) { t.Parallel(); fn(t, true) })
}

func (e *env) jwks(t testing.TB) map[string][]byte {
	t.Helper()
	a := e.do(t, req{method: "GET", path: "/.well-known/jwks.json"})
	if a.Status != 200 {
		t.Fatalf("jwks: %d %s", a.Status, a.Raw)
	}
	return map[string][]byte{"raw": []byte(a.Raw)}
}

func (e *env) verify(t testing.TB, tok string) (map[string]any, string) {
	t.Helper()
	keys, err := jwksKeys(e.jwks(t)["raw"])
	if err != nil {
		t.Fatal(err)
	}
	claims, kid, err := verifyIndependently(tok, keys, authsvc.DefaultIssuer, authsvc.DefaultAudience, e.clock.Now())
	if err != nil {
		t.Fatalf("independent verification: %v", err)
	}
	return claims, kid
}

func TestFlow(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		var revMu sync.Mutex
		var revoked []string
		if err := e.svc.SubscribeRevocations(ctx, func(sid string) { revMu.Lock(); revoked = append(revoked, sid); revMu.Unlock() }); err != nil {
			t.Fatal(err)
		}

		l := e.login(t, "Alice@Acme.test ", authsvc.DemoPassword)
		if l.Status != 200 || l.data()["mfa_required"] != false {
			t.Fatalf("login: %d %s", l.Status, l.Raw)
		}
		comps, _ := l.data()["companies"].([]any)
		if len(comps) != 2 {
			t.Fatalf("companies: %v", l.data()["companies"])
		}
		// a login token is not an access token
		if a := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: l.str("login_token")}); a.Status != 401 {
			t.Fatalf("login token accepted as access token: %d", a.Status)
		}
		sel := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", ua: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/130.0",
			body: map[string]any{"login_token": l.str("login_token"), "company_id": "acme"}})
		if sel.Status != 200 {
			t.Fatalf("select: %d %s", sel.Status, sel.Raw)
		}
		again := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": l.str("login_token"), "company_id": "acme"}})
		if again.Status != 401 {
			t.Fatalf("login token reused: %d", again.Status)
		}
		claims, _ := e.verify(t, sel.str("access_token"))
		if claims["cid"] != "acme" || claims["plan"] != "standard" || !slices.Contains(toStrings(claims["roles"]), "admin") ||
			!strings.Contains(claims["scope"].(string), "invoices:write") || claims["sid"] != sel.str("session_id") {
			t.Fatalf("claims: %v", claims)
		}
		if meta := sel.Body["meta"].(map[string]any); meta["company_id"] != "acme" || meta["user_id"] != claims["sub"] {
			t.Fatalf("meta: %v", meta)
		}

		// refresh rotates; the old token's reuse revokes the family
		e.clock.Add(time.Minute)
		r1 := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": sel.str("refresh_token")}})
		if r1.Status != 200 || r1.str("refresh_token") == sel.str("refresh_token") {
			t.Fatalf("refresh: %d %s", r1.Status, r1.Raw)
		}
		e.verify(t, r1.str("access_token"))
		reuse := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": sel.str("refresh_token")}})
		if reuse.Status != 401 || reuse.code() != "TOKEN_REVOKED" {
			t.Fatalf("reuse: %d %s", reuse.Status, reuse.Raw)
		}
		if r := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": r1.str("refresh_token")}}); r.Status != 401 {
			t.Fatalf("family survived reuse: %d %s", r.Status, r.Raw)
		}
		if e.logs.FilterField(zapString("event", "refresh_token_reuse")).Len() != 1 {
			t.Fatal("reuse not logged as a security event")
		}
		if a := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: r1.str("access_token")}); a.Status != 401 || a.code() != "TOKEN_REVOKED" {
			t.Fatalf("access token of revoked family: %d %s", a.Status, a.Raw)
		}
		if !e.edgeTold(t, sel.str("session_id")) {
			t.Fatal("reused family not marked revoked for the edge")
		}

		// switch company: same session, new pair, membership checked
		s1 := e.session(t, "alice@acme.test", "acme")
		sw := e.do(t, req{method: "POST", path: "/api/v1/auth/switch-company", bearer: s1.str("access_token"), body: map[string]any{"company_id": "globex"}})
		if sw.Status != 200 || sw.str("session_id") != s1.str("session_id") {
			t.Fatalf("switch: %d %s", sw.Status, sw.Raw)
		}
		claims, _ = e.verify(t, sw.str("access_token"))
		if claims["cid"] != "globex" || claims["plan"] != "free" || !slices.Equal(toStrings(claims["roles"]), []string{"viewer"}) ||
			strings.Contains(claims["scope"].(string), ":write") {
			t.Fatalf("switched claims: %v", claims)
		}
		for _, other := range []string{"initech", "ACME ", ""} {
			a := e.do(t, req{method: "POST", path: "/api/v1/auth/switch-company", bearer: sw.str("access_token"), body: map[string]any{"company_id": other}})
			if a.Status != 403 && a.Status != 422 {
				t.Fatalf("switch to %q: %d %s", other, a.Status, a.Raw)
			}
		}
		bob := e.session(t, "bob@globex.test", "globex")
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/switch-company", bearer: bob.str("access_token"), body: map[string]any{"company_id": "acme"}}); a.Status != 403 || a.code() != "FORBIDDEN" {
			t.Fatalf("bob switched to acme: %d %s", a.Status, a.Raw)
		}
		// the refresh token from before the switch is consumed
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s1.str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("pre-switch refresh token still works: %d", a.Status)
		}

		// me, sessions, revoke one
		s2 := e.session(t, "alice@acme.test", "acme")
		s3 := e.session(t, "alice@acme.test", "globex")
		me := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: s2.str("access_token")})
		if me.Status != 200 || me.data()["user"].(map[string]any)["email"] != "alice@acme.test" {
			t.Fatalf("me: %d %s", me.Status, me.Raw)
		}
		ls := e.do(t, req{method: "GET", path: "/api/v1/auth/sessions", bearer: s2.str("access_token")})
		list, _ := ls.Body["data"].([]any)
		if ls.Status != 200 || len(list) != 2 {
			t.Fatalf("sessions: %d %s", ls.Status, ls.Raw)
		}
		for _, it := range list {
			m := it.(map[string]any)
			if m["device"] != "Firefox on Linux" || m["ip"] == "" || m["last_used_at"] == nil {
				t.Fatalf("session entry: %v", m)
			}
		}
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/sessions/" + bob.str("session_id"), bearer: s2.str("access_token")}); a.Status != 404 {
			t.Fatalf("revoked another user's session: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/auth/sessions/" + s3.str("session_id"), bearer: s2.str("access_token")}); a.Status != 200 {
			t.Fatalf("revoke own session: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s3.str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("revoked session refreshed: %d", a.Status)
		}

		// logout all kills every session's refresh token
		s4 := e.session(t, "alice@acme.test", "acme")
		out := e.do(t, req{method: "POST", path: "/api/v1/auth/logout", bearer: s4.str("access_token"), body: map[string]any{"all": true}})
		if out.Status != 200 {
			t.Fatalf("logout all: %d %s", out.Status, out.Raw)
		}
		for _, s := range []answer{sw, s2, s4} {
			if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s.str("refresh_token")}}); a.Status != 401 {
				t.Fatalf("refresh after logout all: %d %s", a.Status, a.Raw)
			}
			if a := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: s.str("access_token")}); a.Status != 401 {
				t.Fatalf("access token after logout all: %d", a.Status)
			}
		}
		// bob is untouched
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": bob.str("refresh_token")}}); a.Status != 200 {
			t.Fatalf("bob's session died with alice's logout: %d %s", a.Status, a.Raw)
		}
		// single logout
		s5 := e.session(t, "alice@acme.test", "acme")
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/logout", bearer: s5.str("access_token")}); a.Status != 200 {
			t.Fatalf("logout: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s5.str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("refresh after logout: %d", a.Status)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			revMu.Lock()
			got := slices.Clone(revoked)
			revMu.Unlock()
			want := []string{sel.str("session_id"), s3.str("session_id"), s4.str("session_id"), s2.str("session_id"), s5.str("session_id")}
			missing := 0
			for _, w := range want {
				if !slices.Contains(got, w) {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("revocation subscription missed %d of %v; got %v", missing, want, got)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func toStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	if err := e.svc.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice, err := e.svc.Store().GetUserByEmail(context.Background(), "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	before := e.hasher.verifies.Load()
	wrong := e.login(t, "alice@acme.test", "not-her-password")
	unknown := e.login(t, "nobody@acme.test", "not-her-password")
	if got := e.hasher.verifies.Load() - before; got != 2 {
		t.Fatalf("password checks = %d, want one per attempt", got)
	}
	e.hasher.mu.Lock()
	hashes := slices.Clone(e.hasher.hashes[len(e.hasher.hashes)-2:])
	e.hasher.mu.Unlock()
	if hashes[0] != alice.PasswordHash || hashes[1] == alice.PasswordHash || !strings.HasPrefix(hashes[1], "$argon2id$") {
		t.Fatalf("unknown user not checked against the dummy argon2id hash: %q", hashes[1])
	}
	if wrong.Status != 401 || unknown.Status != wrong.Status {
		t.Fatalf("status: wrong password %d, unknown user %d", wrong.Status, unknown.Status)
	}
	strip := func(a answer) string {
		b := a.Body
		delete(b, "meta")
		return fmt.Sprint(b)
	}
	if strip(wrong) != strip(unknown) || wrong.Header.Get("WWW-Authenticate") != unknown.Header.Get("WWW-Authenticate") {
		t.Fatalf("answers differ:\n%s\n%s", wrong.Raw, unknown.Raw)
	}
	// a disabled user with the right password gets the same answer
	if err := e.svc.SetUserDisabled(context.Background(), alice.ID, true); err != nil {
		t.Fatal(err)
	}
	disabled := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	if strip(disabled) != strip(unknown) {
		t.Fatalf("disabled user distinguishable: %s", disabled.Raw)
	}
}

func TestParallelGuessingLimited(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external, cfg: authsvc.Config{LoginAccountLimit: 5, LoginIPLimit: 12}})
		if err := e.svc.Ready(context.Background()); err != nil {
			t.Fatal(err)
		}
		fire := func(email func(i int) string, ip func(i int) string) map[int]int {
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					a := e.do(t, req{method: "POST", path: "/api/v1/auth/login", ip: ip(i), body: map[string]any{"email": email(i), "password": "guess-" + fmt.Sprint(i)}})
					mu.Lock()
					statuses[a.Status]++
					mu.Unlock()
					if a.Status == 429 && (a.Header.Get("Retry-After") == "" || a.code() != "RATE_LIMITED") {
						t.Errorf("429 without Retry-After or code: %s", a.Raw)
					}
				})
			}
			wg.Wait()
			return statuses
		}
		before := e.hasher.verifies.Load()
		st := fire(func(int) string { return "alice@acme.test" }, func(i int) string { return fmt.Sprintf("198.51.100.%d", i+1) })
		if checks := e.hasher.verifies.Load() - before; checks > 5 || st[401] > 5 || st[401]+st[429] != 50 {
			t.Fatalf("per account: %d password checks, statuses %v; limit 5", checks, st)
		}
		// the right password is refused too while the account is throttled
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/login", ip: "203.0.113.200", body: map[string]any{"email": "alice@acme.test", "password": authsvc.DemoPassword}}); a.Status != 429 {
			t.Fatalf("throttled account let the right password in: %d", a.Status)
		}
		before = e.hasher.verifies.Load()
		st = fire(func(i int) string { return fmt.Sprintf("user%d@acme.test", i) }, func(int) string { return "203.0.113.7" })
		if checks := e.hasher.verifies.Load() - before; checks > 12 || st[401] > 12 || st[401]+st[429] != 50 {
			t.Fatalf("per address: %d password checks, statuses %v; limit 12", checks, st)
		}
		// bob, from elsewhere, is not affected, and a success does not count
		for range 7 {
			if a := e.do(t, req{method: "POST", path: "/api/v1/auth/login", ip: "192.0.2.50", body: map[string]any{"email": "bob@globex.test", "password": authsvc.DemoPassword}}); a.Status != 200 {
				t.Fatalf("bob's login: %d %s", a.Status, a.Raw)
			}
		}
	})
}

func TestParallelRefreshOneFamily(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		s := e.session(t, "bob@globex.test", "globex")
		var mu sync.Mutex
		var wins []answer
		codes := map[string]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s.str("refresh_token")}})
				mu.Lock()
				defer mu.Unlock()
				if a.Status == 200 {
					wins = append(wins, a)
				} else {
					codes[a.code()]++
				}
			})
		}
		wg.Wait()
		if len(wins) != 1 || codes["TOKEN_REVOKED"] != 19 {
			t.Fatalf("parallel refresh: %d new pairs, failures %v; want exactly 1 and 19 TOKEN_REVOKED", len(wins), codes)
		}
		// the racing presentations count as reuse: the family, the winner's pair included, is revoked
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": wins[0].str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("winner's refresh token after reuse: %d", a.Status)
		}
		sessions, _ := e.svc.Store().ListSessions(context.Background(), e.verifySub(t, wins[0].str("access_token")), e.clock.Now())
		if len(sessions) != 0 {
			t.Fatalf("sessions left after parallel reuse: %d", len(sessions))
		}
	})
}

func (e *env) verifySub(t testing.TB, tok string) string {
	c, _ := e.verify(t, tok)
	return c["sub"].(string)
}

func TestRemovedMemberCannotRefresh(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		s := e.session(t, "alice@acme.test", "globex")
		sub := e.verifySub(t, s.str("access_token"))
		root := e.session(t, "root@erpgate.local", "acme")
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/admin/memberships/globex/" + sub, bearer: root.str("access_token")}); a.Status != 200 {
			t.Fatalf("remove membership: %d %s", a.Status, a.Raw)
		}
		// Removing the membership ended the session bound to the company.
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s.str("refresh_token")}})
		if a.Status != 401 || a.code() != "TOKEN_REVOKED" {
			t.Fatalf("removed member refreshed: %d %s", a.Status, a.Raw)
		}
		if !e.edgeTold(t, s.str("session_id")) {
			t.Fatal("session not revoked after membership removal")
		}
		// password change revokes everything
		s2 := e.session(t, "alice@acme.test", "acme")
		if err := e.svc.ChangePassword(context.Background(), sub, "a-new-password"); err != nil {
			t.Fatal(err)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": s2.str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("refresh after password change: %d", a.Status)
		}
	})
}

func TestRefreshExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{RefreshIdleTTL: time.Hour, RefreshTTL: 3 * time.Hour}})
	s := e.session(t, "bob@globex.test", "globex")
	tok := s.str("refresh_token")
	for range 4 { // used every 50 minutes: the idle limit never hits, the absolute one does
		e.clock.Add(50 * time.Minute)
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": tok}})
		if a.Status != 200 {
			if e.clock.Now().Sub(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) < 3*time.Hour {
				t.Fatalf("refresh within limits: %d %s", a.Status, a.Raw)
			}
			return
		}
		tok = a.str("refresh_token")
	}
	t.Fatal("refresh succeeded past the absolute lifetime")
}

type alwaysMFA struct{}

func (alwaysMFA) Required(context.Context, store.User) (bool, error) { return true, nil }

func TestSecondFactorHook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	// rebuild with the hook
	svc, err := authsvc.New(context.Background(), authsvc.Config{Demo: true}, authsvc.Deps{Logger: zapNop(), Clock: e.clock, Hasher: e.hasher, SecondFactor: alwaysMFA{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e.svc, e.h = svc, svc.Handler(authsvc.HTTPOptions{})
	l := e.login(t, "bob@globex.test", authsvc.DemoPassword)
	if l.Status != 200 || l.data()["mfa_required"] != true {
		t.Fatalf("login: %s", l.Raw)
	}
	a := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": l.str("login_token"), "company_id": "globex"}})
	if a.Status != 401 || a.code() != "MFA_REQUIRED" {
		t.Fatalf("select-company without second factor: %d %s", a.Status, a.Raw)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cases := []struct {
		name   string
		r      req
		status int
	}{
		{"unknown path", req{method: "GET", path: "/api/v1/auth/nope"}, 404},
		{"wrong method", req{method: "GET", path: "/api/v1/auth/login"}, 405},
		{"unknown field", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "a@b.c", "password": "x", "admin": true}}, 400},
		{"huge password", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "a@b.c", "password": strings.Repeat("x", 2000)}}, 422},
		{"huge body", req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": strings.Repeat("x", 20000)}}, 413},
		{"no bearer", req{method: "GET", path: "/api/v1/auth/me"}, 401},
		{"garbage bearer", req{method: "GET", path: "/api/v1/auth/me", bearer: "a.b.c"}, 401},
		{"garbage refresh", req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": "ert_nope"}}, 401},
		{"introspect unauthenticated", req{method: "POST", path: "/api/v1/auth/introspect", body: map[string]any{"token": "x"}}, 401},
		{"introspect wrong secret", req{method: "POST", path: "/api/v1/auth/introspect", bearer: "edge-secret-for-testz", body: map[string]any{"token": "x"}}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if a := e.do(t, c.r); a.Status != c.status {
				t.Fatalf("%d, want %d: %s", a.Status, c.status, a.Raw)
			}
		})
	}
}
