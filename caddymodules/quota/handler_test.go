package quota

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/redisproc"
	"github.com/erpgate/erpgate/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newHandler provisions an erp app from appJSON and erp_quota from hJSON on
// it, with clk.
func newHandler(t testing.TB, appJSON, hJSON string, clk *clock) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	app := new(erpapp.App)
	if err := json.Unmarshal([]byte(appJSON), app); err != nil {
		t.Fatal(err)
	}
	if app.KeyPrefix == "" { // the memory store is the process's: keep parallel tests apart
		app.KeyPrefix = "t" + strconv.FormatInt(prefixSeq.Add(1), 10) + ":"
	}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h := new(Handler)
	if err := json.Unmarshal([]byte(hJSON), h); err != nil {
		t.Fatal(err)
	}
	h.clock = clk
	if err := h.provision(ctx, app); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = h.Cleanup()
		_ = app.Cleanup()
	})
	return h
}

var prefixSeq atomic.Int64

type ident struct{ company, user, plan, keyID string }

type result struct {
	w      *httptest.ResponseRecorder
	called bool
	err    error
}

func serve(h *Handler, id ident) result {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/invoices", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	repl := caddyhttp.NewTestReplacer(r)
	for k, v := range map[string]string{"company_id": id.company, "id": id.user, "plan": id.plan, "key_id": id.keyID} {
		if v != "" {
			repl.Set("http.auth.user."+k, v)
		}
	}
	w := httptest.NewRecorder()
	var res result
	res.err = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		res.called = true
		w.WriteHeader(200)
		return nil
	}))
	res.w = w
	return res
}

func refusal(t *testing.T, res result) *contract.Error {
	t.Helper()
	var he caddyhttp.HandlerError
	ce, ok := contract.AsError(res.err)
	if !errors.As(res.err, &he) || !ok || he.StatusCode != ce.Status {
		t.Fatalf("not a handler error with a contract.Error: %v", res.err)
	}
	if res.called {
		t.Fatal("next was called on a refusal")
	}
	return ce
}

var (
	now    = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	globex = ident{company: "globex", user: "bob", plan: "free"}
)

const small = `{"plans":{"free":{"rate":"3/m","quota":5}}}`

func TestHeadersAndRefusals(t *testing.T) {
	t.Parallel()
	clk := &clock{t: now}
	h := newHandler(t, `{}`, small, clk)
	for i := range 3 {
		res := serve(h, globex)
		if res.err != nil || !res.called {
			t.Fatalf("request %d: %v", i, res.err)
		}
		hd := res.w.Header()
		if got, want := hd.Get("RateLimit-Policy"), `"free";q=3;w=60, "free-month";q=5;w=2592000`; got != want {
			t.Fatalf("RateLimit-Policy %q, want %q", got, want)
		}
		rem, reset := []string{"2", "1", "0"}[i], []string{"60", "50", "40"}[i]
		if got, want := hd.Get("RateLimit"), `"free";r=`+rem+`;t=`+reset; got != want {
			t.Fatalf("request %d: RateLimit %q, want %q", i, got, want)
		}
		if hd.Get("X-RateLimit-Limit") != "3" || hd.Get("X-RateLimit-Remaining") != rem || hd.Get("X-RateLimit-Reset") != reset {
			t.Fatalf("X-RateLimit-*: %v", hd)
		}
		clk.Add(10 * time.Second)
	}
	res := serve(h, globex) // at +30s: the first admission leaves at +60s
	ce := refusal(t, res)
	if ce.Status != 429 || ce.Code != contract.CodeRateLimited {
		t.Fatalf("got %d %s", ce.Status, ce.Code)
	}
	if ce.Header.Get("Retry-After") != "30" || ce.Header.Get("RateLimit") != `"free";r=0;t=30` || ce.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("refusal headers %v", ce.Header)
	}
	if res.w.Header().Get("RateLimit") != "" {
		t.Fatal("refusal headers written to the response: they go in the error, for the envelope")
	}
	if ce.Context["limit"] != int64(3) || ce.Context["window"] != int64(60) || ce.Context["policy"] != "free" ||
		ce.Context["reset"] != now.Add(time.Minute).Format(time.RFC3339) || ce.Context["retry_after"] != int64(30) {
		t.Fatalf("context %v", ce.Context)
	}
	// two more fit after the window moved on; the quota (5) then refuses
	clk.Add(40 * time.Second) // +70s: two admissions left the window
	for i := range 2 {
		if res := serve(h, globex); res.err != nil {
			t.Fatalf("after the window: %d: %v", i, res.err)
		}
	}
	clk.Add(time.Hour)
	ce = refusal(t, serve(h, globex))
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if ce.Code != contract.CodeQuotaExceeded || ce.Context["reset"] != end.Format(time.RFC3339) ||
		ce.Context["period_start"] != "2026-11-01T00:00:00Z" || ce.Context["policy"] != "free-month" {
		t.Fatalf("quota refusal %s %v", ce.Code, ce.Context)
	}
	if ra := ce.Header.Get("Retry-After"); ra != "737930" { // to Dec 1 00:00 from Nov 22 11:01:10: 8d 12h58m50s
		t.Fatalf("Retry-After %s", ra)
	}
	// another company is not affected
	if res := serve(h, ident{company: "initech", user: "x", plan: "free"}); res.err != nil {
		t.Fatalf("other company: %v", res.err)
	}
}

func TestNoCompanyIsAnErrorNotASharedBucket(t *testing.T) {
	t.Parallel()
	h := newHandler(t, `{}`, small, &clock{t: now})
	for range 5 {
		ce := refusal(t, serve(h, ident{user: "bob", plan: "free"}))
		if ce.Status != 500 {
			t.Fatalf("got %d", ce.Status)
		}
	}
	if res := serve(h, globex); res.err != nil || res.w.Header().Get("RateLimit") != `"free";r=2;t=60` {
		t.Fatalf("the refused requests were counted: %v %v", res.err, res.w.Header())
	}
}

func TestProvisionErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]string{
		"constant key":         `{"key":"everyone"}`,
		"constant client":      `{"client":"x"}`,
		"bad policy":           `{"on_redis_down":"maybe"}`,
		"bad rate":             `{"plans":{"free":{"rate":"60 per minute"}}}`,
		"bad plan name":        `{"plans":{"Gold Plan":{"rate":"1/s"}}}`,
		"unknown default plan": `{"default_plan":"gold"}`,
		"bad zone":             `{"time_zone":"Mars/Olympus"}`,
		"bad billing day":      `{"billing_day":32}`,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			app := new(erpapp.App)
			if err := app.Provision(ctx); err != nil {
				t.Fatal(err)
			}
			h := new(Handler)
			if err := json.Unmarshal([]byte(cfg), h); err != nil {
				t.Fatal(err)
			}
			if err := h.provision(ctx, app); err == nil {
				t.Fatal("provisioned")
			}
			_ = h.Cleanup()
		})
	}
}

func TestPlansOverridesAndSubLimits(t *testing.T) {
	t.Parallel()
	clk := &clock{t: now}
	appJSON := `{"quota_overrides":{
		"acme":    {"rate":"2/m","billing_day":25,"time_zone":"Pacific/Auckland"},
		"initech": {"plan":"enterprise"},
		"hooli":   {"rate":"unlimited","quota":0}}}`
	h := newHandler(t, appJSON, `{"plans":{"standard":{"rate":"100/m","client_rate":"1/s","quota":1000}}}`, clk)
	acme := ident{company: "acme", user: "alice", plan: "standard"}
	res := serve(h, acme)
	// Auckland (UTC+13 in November): Nov 22 23:00 local, period from Oct 25
	if res.err != nil || res.w.Header().Get("RateLimit-Policy") != `"standard";q=2;w=60, "standard-client";q=1;w=1, "standard-month";q=1000;w=2678400` {
		t.Fatalf("%v %q", res.err, res.w.Header().Get("RateLimit-Policy"))
	}
	if got := res.w.Header().Get("RateLimit"); got != `"standard-client";r=0;t=1` {
		t.Fatalf("closest policy %q", got)
	}
	ce := refusal(t, serve(h, acme)) // alice's 1/s
	if ce.Context["policy"] != "standard-client" || ce.Code != contract.CodeRateLimited {
		t.Fatalf("%v", ce.Context)
	}
	if res := serve(h, ident{company: "acme", keyID: "key1", user: "apikey:key1", plan: "standard"}); res.err != nil {
		t.Fatalf("an API key has its own sub-limit: %v", res.err)
	}
	ce = refusal(t, serve(h, ident{company: "acme", user: "carol", plan: "standard"})) // acme's 2/m
	if ce.Context["policy"] != "standard" {
		t.Fatalf("%v", ce.Context)
	}
	// the quota's period is in acme's zone, from its billing day
	clk.Add(time.Hour)
	u, err := h.Usage(usageRequest(acme))
	if err != nil {
		t.Fatal(err)
	}
	auck, _ := time.LoadLocation("Pacific/Auckland")
	if u.Quota == nil || u.Quota.Used != 2 || !u.Quota.PeriodStart.Equal(time.Date(2026, 10, 25, 0, 0, 0, 0, auck)) ||
		!u.Quota.PeriodEnd.Equal(time.Date(2026, 11, 25, 0, 0, 0, 0, auck)) || u.Rate == nil || u.Rate.Used != 0 || u.ClientRate == nil {
		t.Fatalf("usage %+v %+v", u, u.Quota)
	}
	for range 3 { // enterprise by override: no limits, no headers
		res := serve(h, ident{company: "initech", user: "x", plan: "free"})
		if res.err != nil || res.w.Header().Get("RateLimit-Policy") != "" {
			t.Fatalf("%v %v", res.err, res.w.Header())
		}
	}
	res = serve(h, ident{company: "hooli", user: "x", plan: "standard"}) // only the client rate is left
	if res.err != nil || res.w.Header().Get("RateLimit-Policy") != `"standard-client";q=1;w=1` {
		t.Fatalf("%v %v", res.err, res.w.Header())
	}
	res = serve(h, ident{company: "umbrella", user: "x", plan: "gold"}) // unknown plan: the default (free)
	if res.err != nil || !strings.HasPrefix(res.w.Header().Get("RateLimit-Policy"), `"free";q=60;w=60`) {
		t.Fatalf("%v %v", res.err, res.w.Header())
	}
}

func usageRequest(id ident) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/usage", nil)
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.company_id", id.company)
	repl.Set("http.auth.user.id", id.user)
	repl.Set("http.auth.user.plan", id.plan)
	return r
}

func TestShadow(t *testing.T) {
	t.Parallel()
	h := newHandler(t, `{}`, `{"shadow":true,"plans":{"free":{"rate":"2/m"}}}`, &clock{t: now})
	for i := range 5 {
		res := serve(h, globex)
		if res.err != nil || !res.called {
			t.Fatalf("shadow refused request %d: %v", i, res.err)
		}
		want := []string{"1", "0", "0", "0", "0"}[i]
		if res.w.Header().Get("X-RateLimit-Remaining") != want {
			t.Fatalf("request %d: remaining %q", i, res.w.Header().Get("X-RateLimit-Remaining"))
		}
	}
}

// TestRedisDown stops a private Redis: each policy does what it says, and
// the handler goes back to Redis by itself when it is back.
func TestRedisDown(t *testing.T) {
	srv := redisproc.Start(t)
	for _, policy := range []string{"allow", "deny", "local"} {
		t.Run(policy, func(t *testing.T) {
			clk := &clock{t: now}
			h := newHandler(t, `{"redis":"`+srv.URL+`","key_prefix":"t-`+policy+`:"}`,
				`{"on_redis_down":"`+policy+`","probe_interval":"20ms","timeout":"200ms","plans":{"free":{"rate":"3/m"}}}`, clk)
			if res := serve(h, globex); res.err != nil || res.w.Header().Get("RateLimit") != `"free";r=2;t=60` {
				t.Fatalf("redis up: %v %v", res.err, res.w.Header())
			}
			srv.Stop()
			for i := range 5 {
				res := serve(h, globex)
				switch policy {
				case "allow":
					if res.err != nil || !res.called || res.w.Header().Get("RateLimit") != "" {
						t.Fatalf("allow %d: %v %v", i, res.err, res.w.Header())
					}
				case "deny":
					ce := refusal(t, res)
					if ce.Status != 503 || ce.Code != contract.CodeServiceUnavailable || ce.Header.Get("Retry-After") != "1" {
						t.Fatalf("deny %d: %d %s %v", i, ce.Status, ce.Code, ce.Header)
					}
				case "local":
					if i < 3 {
						if res.err != nil || !res.called {
							t.Fatalf("local %d: %v", i, res.err)
						}
					} else if ce := refusal(t, res); ce.Code != contract.CodeRateLimited {
						t.Fatalf("local %d: %s", i, ce.Code)
					}
				}
			}
			if !h.fallback.down.Load() {
				t.Fatal("not in fallback")
			}
			srv.Restart() // empty: no persistence
			deadline := time.Now().Add(30 * time.Second)
			for h.fallback.down.Load() {
				if time.Now().After(deadline) {
					t.Fatal("did not go back to redis")
				}
				time.Sleep(10 * time.Millisecond)
			}
			// counted in the restarted Redis again (which lost the first request)
			if res := serve(h, globex); res.err != nil || res.w.Header().Get("RateLimit") != `"free";r=2;t=60` {
				t.Fatalf("redis back: %v %v", res.err, res.w.Header())
			}
		})
	}
}

// TestSharedRedisExact: several handlers (as on several instances) on one
// Redis, many concurrent clients of one company: exactly the limit.
func TestSharedRedisExact(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	clk := &clock{t: time.Now()}
	var hs []*Handler
	for range 3 {
		hs = append(hs, newHandler(t, `{"redis":"`+url+`","key_prefix":"`+prefix+`"}`, `{"timeout":"5s","plans":{"free":{"rate":"40/m"}}}`, clk))
	}
	var mu sync.Mutex
	allowed, refused := 0, 0
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for range 10 {
				res := serve(hs[g%3], globex)
				mu.Lock()
				if res.err == nil {
					allowed++
				} else {
					refused++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 40 || refused != 200 {
		t.Fatalf("allowed %d refused %d, want 40 and 200", allowed, refused)
	}
}

func TestReplValue(t *testing.T) {
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.company_id", "acme")
	for _, in := range []string{"{http.auth.user.company_id}", "{http.auth.user.plan:free}", "co-{http.auth.user.company_id}",
		"{http.auth.user.missing}", "{http.auth.user.company_id}-{none}", "{}", "plain"} {
		if got, want := replValue(repl, in), repl.ReplaceAll(in, ""); got != want {
			t.Errorf("replValue(%q) = %q, ReplaceAll gives %q", in, got, want)
		}
	}
	if replValue(repl, "{http.auth.user.company_id}") != "acme" {
		t.Fatal("one placeholder not read")
	}
}
