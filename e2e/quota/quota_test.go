package quota

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// the plans of Caddyfile.example
const examplePlans = `
					plan free 60/m 10000
					plan standard 6000/m 1000000`

// TestHeadersEnvelopesUsageAndOverrides: one instance on the embedded
// default (memory store).
func TestHeadersEnvelopesUsageAndOverrides(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: caddyfile(examplePlans)})
	bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	url := in.URL + "/api/v1/invoices?limit=1"

	a := get(url, bob)
	if a.err != nil || a.status != 200 {
		t.Fatalf("first request: %v %d %s", a.err, a.status, a.body)
	}
	start, end := monthUTC(time.Now())
	wantPolicy := fmt.Sprintf(`"free";q=60;w=60, "free-month";q=10000;w=%d`, int64(end.Sub(start)/time.Second))
	if got := a.header.Get("RateLimit-Policy"); got != wantPolicy {
		t.Fatalf("RateLimit-Policy %q, want %q", got, wantPolicy)
	}
	if got := a.header.Get("RateLimit"); got != `"free";r=59;t=60` {
		t.Fatalf("RateLimit %q", got)
	}
	if a.header.Get("X-RateLimit-Limit") != "60" || a.header.Get("X-RateLimit-Remaining") != "59" || a.header.Get("X-RateLimit-Reset") != "60" {
		t.Fatalf("X-RateLimit-*: %v", a.header)
	}
	if a.header.Get("Retry-After") != "" {
		t.Fatal("Retry-After on a success")
	}

	// the usage call neither counts nor is limited
	u := getUsage(t, in.URL, bob)
	if u.CompanyID != "globex" || u.Plan != "free" || u.Store != "memory" || u.Rate == nil || u.Rate.Used != 1 || u.Rate.Remaining != 59 ||
		u.Quota == nil || u.Quota.Used != 1 || u.Quota.Limit != 10000 || !u.Quota.PeriodStart.Equal(start) || !u.Quota.PeriodEnd.Equal(end) {
		t.Fatalf("usage %+v", u)
	}
	if len(u.DeprecatedCalls) != 1 || u.DeprecatedCalls[0].Version != "v1" || u.DeprecatedCalls[0].Calls != 1 {
		t.Fatalf("deprecated calls %+v", u.DeprecatedCalls)
	}

	counts := hammer(t, []string{url}, bob, 8, 10)
	if counts[200] != 59 || counts[429] != 21 {
		t.Fatalf("globex on free (60/m): %v, want 59 more 200s and 21 429s", counts)
	}
	a = get(url, bob)
	env := a.envelope(t)
	if a.status != 429 || env.Success || len(env.Errors) != 1 || env.Errors[0].Code != "RATE_LIMITED" || string(env.Data) != "null" {
		t.Fatalf("refusal: %d %s", a.status, a.body)
	}
	ctx := env.Errors[0].Context
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 || ctx["limit"] != float64(60) || ctx["window"] != float64(60) || ctx["policy"] != "free" || ctx["retry_after"] != float64(retry) {
		t.Fatalf("refusal context %v, Retry-After %q", ctx, a.header.Get("Retry-After"))
	}
	if reset, err := time.Parse(time.RFC3339, fmt.Sprint(ctx["reset"])); err != nil || reset.Before(time.Now()) || reset.After(time.Now().Add(61*time.Second)) {
		t.Fatalf("reset %v", ctx["reset"])
	}
	if a.header.Get("RateLimit") != fmt.Sprintf(`"free";r=0;t=%d`, retry) || a.header.Get("X-RateLimit-Remaining") != "0" ||
		a.header.Get("RateLimit-Policy") != wantPolicy || a.header.Get("X-Request-ID") == "" {
		t.Fatalf("refusal headers %v", a.header)
	}
	if u := getUsage(t, in.URL, bob); u.Rate.Used != 60 || u.Rate.Remaining != 0 || u.Quota.Used != 60 {
		t.Fatalf("refusals consumed: %+v %+v", u.Rate, u.Quota)
	}

	// acme (standard) is not affected by globex
	a = get(url, alice)
	if a.status != 200 || a.header.Get("RateLimit") != `"standard";r=5999;t=60` {
		t.Fatalf("acme: %d %v", a.status, a.header)
	}

	// an admin gives acme a quota of 3 through the admin API: counters carry over
	resp := httpt.Do(t, http.MethodPost, in.AdminURL+"/config/apps/erp/quota_overrides", []byte(`{"acme":{"quota":3,"billing_day":15,"time_zone":"Pacific/Auckland"}}`),
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("admin API: %d %s", resp.StatusCode, resp.Body)
	}
	// a new billing day starts a new period (its counter starts at 0); the
	// rate window carries over
	for i := range 2 {
		if a = get(url, alice); a.status != 200 {
			t.Fatalf("acme after the override, call %d: %d %s", i, a.status, a.body)
		}
	}
	a = get(url, alice)
	if a.status != 200 || a.header.Get("RateLimit") != `"standard-month";r=0;t=`+a.header.Get("X-RateLimit-Reset") {
		t.Fatalf("acme's third call of 3: %d %v", a.status, a.header)
	}
	a = get(url, alice)
	env = a.envelope(t)
	if a.status != 429 || env.Errors[0].Code != "QUOTA_EXCEEDED" || env.Errors[0].Context["limit"] != float64(3) {
		t.Fatalf("quota: %d %s", a.status, a.body)
	}
	u = getUsage(t, in.URL, alice)
	if u.Quota == nil || u.Quota.Limit != 3 || u.Quota.Used != 3 || u.Quota.PeriodStart.Day() == 1 {
		t.Fatalf("acme usage after the override: %+v", u.Quota)
	}
	if ps := u.Quota.PeriodStart.In(mustZone(t, "Pacific/Auckland")); ps.Day() > 15 || ps.Hour() != 0 {
		t.Fatalf("period start %v is not a midnight of a 15th (or shorter month end) in Auckland", ps)
	}
	// and back
	resp = httpt.Do(t, http.MethodDelete, in.AdminURL+"/config/apps/erp/quota_overrides/acme", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("admin API delete: %d %s", resp.StatusCode, resp.Body)
	}
	if a = get(url, alice); a.status != 200 || a.header.Get("RateLimit") != `"standard";r=5995;t=`+a.header.Get("X-RateLimit-Reset") {
		t.Fatalf("acme after removing the override: %d %v", a.status, a.header)
	}
}

func monthUTC(now time.Time) (time.Time, time.Time) {
	n := now.UTC()
	s := time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, time.UTC)
	return s, s.AddDate(0, 1, 0)
}

func mustZone(t *testing.T, name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestExactAcrossInstances is the first "Must show": many concurrent
// clients of one company spread over two and three edge instances on one
// Redis get exactly the limit in the window.
func TestExactAcrossInstances(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(strconv.Itoa(n)+" instances", func(t *testing.T) {
			t.Parallel()
			ins := shared(t, n, examplePlans)
			bob := demoauth.Login(t, ins[0].URL, "bob@globex.test", "globex").Access
			var urls []string
			for _, in := range ins {
				urls = append(urls, in.URL+"/api/v2/invoices?limit=1")
			}
			counts := hammer(t, urls, bob, 12*n, 10)
			if counts[200] != 60 || counts[429] != 120*n-60 {
				t.Fatalf("%d instances: %v, want exactly 60 allowed", n, counts)
			}
			for _, in := range ins {
				u := getUsage(t, in.URL, bob)
				if u.Store != "redis" || u.Rate.Used != 60 || u.Quota.Used != 60 {
					t.Fatalf("usage on %s: %+v %+v", in.URL, u.Rate, u.Quota)
				}
			}
			// another company of the same instances is untouched
			alice := demoauth.Login(t, ins[n-1].URL, "alice@acme.test", "acme").Access
			if a := get(urls[0], alice); a.status != 200 || a.header.Get("RateLimit") != `"standard";r=5999;t=60` {
				t.Fatalf("acme: %d %v", a.status, a.header)
			}
		})
	}
}
