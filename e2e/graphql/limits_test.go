package graphql

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// Queries each over exactly one of the free plan's limits of
// Caddyfile.example (max_depth 8, max_cost 50, max_aliases 20, max_size
// 8KiB) and under the standard plan's.
var (
	// depth 10 (invoices 1, nodes 2, customer 3, … id 10), cost 6
	tooDeep = `{ invoices(first: 1) { nodes { customer { invoices(first: 1) { nodes { customer {
		invoices(first: 1) { nodes { customer { id } } } } } } } } } }`
	// cost 1 + 50 × (customer 1 + invoices 1 + 10 × customer 1) = 601, depth 7
	tooCostly = `query($outer: Int!) { invoices(first: $outer) { nodes { customer {
		invoices(first: 10) { nodes { customer { id } } } } } } }`
	// 21 aliases, cost 1, depth 2
	tooManyAliases = func() string {
		var b strings.Builder
		b.WriteString(`{ customer(id: "cus_globex_001") {`)
		for i := 1; i <= 21; i++ {
			fmt.Fprintf(&b, " a%d: id", i)
		}
		b.WriteString(" } }")
		return b.String()
	}()
	// 8363 bytes: over 8KiB (8192), under 32KiB
	tooLarge = "# " + strings.Repeat("padding ", 1040) + "\n{ customers(first: 1) { nodes { id } } }"
)

// TestLimits: the free plan's limits refuse before any backend call (the
// counting proxy sees nothing) with 400 QUERY_TOO_COMPLEX and the measured
// value in context; the standard plan runs the same queries. Then a query's
// cost is what the company's rate limit counts: globex (free, 60 a minute)
// pays 21 for 20 invoices with their customers, and a query costing more
// than what is left is 429 RATE_LIMITED with Retry-After, in the GraphQL
// shape, with no backend call.
func TestLimits(t *testing.T) {
	t.Parallel()
	in, c := startCounted(t, "", "invoices", "customers")
	u := login(t, in.URL)

	refusals := []struct {
		name, query string
		vars        map[string]any
		key         string
		measured    float64
		limit       float64
	}{
		{"depth", tooDeep, nil, "depth", 10, 8},
		{"cost: a list multiplies by first", tooCostly, map[string]any{"outer": 50}, "cost", 601, 50},
		{"aliases", tooManyAliases, nil, "aliases", 21, 20},
		{"size", tooLarge, nil, "size", float64(len(tooLarge)), 8192},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			c.reset()
			a := post(t, in.URL, u.bobGlobex, request{Query: r.query, Variables: r.vars}, nil)
			if a.Status != 400 || len(a.Errors) != 1 || a.code() != "QUERY_TOO_COMPLEX" {
				t.Fatalf("globex (free): %s", a)
			}
			if _, ok := a.Top["data"]; ok {
				t.Fatalf("a refused request has data: %s", a.Raw)
			}
			ctx := a.Errors[0].Extensions.Context
			if ctx[r.key] != r.measured || ctx["limit"] != r.limit || len(ctx) != 2 {
				t.Fatalf("context %v, want {%s: %v, limit: %v}", ctx, r.key, r.measured, r.limit)
			}
			if n := len(c.requests("")); n != 0 {
				t.Fatalf("a refused query made %d backend calls:\n%s", n, c.summary())
			}
			// the standard plan (acme) allows it
			if r.key == "aliases" {
				return // the query names a globex customer
			}
			a = post(t, in.URL, u.aliceAcme, request{Query: r.query, Variables: r.vars}, nil)
			if a.Status != 200 || len(a.Errors) > 0 {
				t.Fatalf("acme (standard): %s", a)
			}
		})
	}
	t.Run("aliases under the standard plan", func(t *testing.T) {
		a := post(t, in.URL, u.aliceAcme, request{Query: strings.Replace(tooManyAliases, "cus_globex_001", "cus_acme_001", 1)}, nil)
		if a.Status != 200 || len(a.Errors) > 0 || at(t, a.data(t), "customer", "a21") != "cus_acme_001" {
			t.Fatalf("acme: %s", a)
		}
	})

	t.Run("cost charged to the rate limit", func(t *testing.T) {
		// cost 1 + 20 × 1 = 21
		const q = `{ invoices(first: 20) { nodes { number customer { display_name } } } }`
		remaining := func(a *answer) int {
			t.Helper()
			n, err := strconv.Atoi(a.Header.Get("X-RateLimit-Remaining"))
			if err != nil {
				t.Fatalf("X-RateLimit-Remaining %q: %s", a.Header.Get("X-RateLimit-Remaining"), a)
			}
			return n
		}
		c.reset()
		a := post(t, in.URL, u.bobGlobex, request{Query: q}, nil)
		if a.Status != 200 || len(a.Errors) > 0 || a.Extensions.Meta.Cost == nil || *a.Extensions.Meta.Cost != 21 {
			t.Fatalf("first query: %s", a)
		}
		// the refusals above were not charged: 60 - 21
		if got := remaining(a); got != 39 || !strings.HasPrefix(a.Header.Get("RateLimit"), `"free";r=39;`) {
			t.Fatalf("after a query of cost 21: remaining %d, RateLimit %q", got, a.Header.Get("RateLimit"))
		}
		if len(c.requests("")) != 2 {
			t.Fatalf("calls:\n%s", c.summary())
		}

		// more than the whole window (60) could ever admit: refused as too
		// complex (free's max_cost 50), not with a Retry-After that would
		// never come true; counts nothing
		c.reset()
		a = post(t, in.URL, u.bobGlobex, request{Query: `{ invoices(first: 100) { nodes { number customer { display_name } } } }`}, nil)
		if a.Status != 400 || len(a.Errors) != 1 || a.code() != "QUERY_TOO_COMPLEX" ||
			a.Errors[0].Extensions.Context["cost"] != float64(101) || a.Errors[0].Extensions.Context["limit"] != float64(50) {
			t.Fatalf("cost 101 on free: %s", a)
		}
		if len(c.requests("")) != 0 {
			t.Fatalf("a refused query made backend calls:\n%s", c.summary())
		}

		a = post(t, in.URL, u.bobGlobex, request{Query: q}, nil)
		if a.Status != 200 || len(a.Errors) > 0 || remaining(a) != 18 {
			t.Fatalf("second query: remaining %s: %s", a.Header.Get("X-RateLimit-Remaining"), a)
		}
		// 21 > 18 left
		c.reset()
		a = post(t, in.URL, u.bobGlobex, request{Query: q}, nil)
		rateRefusal(t, a)
		if len(c.requests("")) != 0 {
			t.Fatalf("a refused query made backend calls:\n%s", c.summary())
		}
		// a cheaper one still fits
		a = post(t, in.URL, u.bobGlobex, request{Query: `{ customer(id: "cus_globex_002") { id } }`}, nil)
		if a.Status != 200 || len(a.Errors) > 0 || remaining(a) != 17 {
			t.Fatalf("a query of cost 1 with 18 left: remaining %s: %s", a.Header.Get("X-RateLimit-Remaining"), a)
		}
		// and REST sees the same window
		if got := restStatus(t, in.URL, u.bobGlobex, "/api/v2/customers?limit=1"); got != 200 {
			t.Fatalf("REST after GraphQL: %d", got)
		}
		a = post(t, in.URL, u.bobGlobex, request{Query: `{ customer(id: "cus_globex_002") { id } }`}, nil)
		if a.Status != 200 || remaining(a) != 15 {
			t.Fatalf("GraphQL and REST share the window: remaining %s, want 15", a.Header.Get("X-RateLimit-Remaining"))
		}
	})

	// the plan is the company's quota override plan when it has one
	t.Run("plan from the quota override", func(t *testing.T) { planFromOverride(t, in.AdminURL, in.URL, u) })

	// the monthly quota counts the cost too: acme with 10 requests left
	// cannot run a query of cost 21, and can one of cost 1
	t.Run("quota exceeded", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v1/usage", demoauth.Bearer(u.aliceAcme))
		var usage struct {
			Quota struct {
				Used int64 `json:"used"`
			} `json:"quota"`
		}
		if env := resp.Envelope(t); resp.StatusCode != 200 || json.Unmarshal(env.Data, &usage) != nil || usage.Quota.Used == 0 {
			t.Fatalf("usage: %d %s", resp.StatusCode, resp.Body)
		}
		quota := usage.Quota.Used + 10
		body := fmt.Sprintf(`{"globex":{"plan":"standard"},"acme":{"quota":%d}}`, quota)
		if r := httpt.Do(t, http.MethodPost, in.AdminURL+"/config/apps/erp/quota_overrides", []byte(body), map[string]string{"Content-Type": "application/json"}); r.StatusCode != 200 {
			t.Fatalf("quota override: %d %s", r.StatusCode, r.Body)
		}
		c.reset()
		a := post(t, in.URL, u.aliceAcme, request{Query: `{ invoices(first: 20) { nodes { number customer { display_name } } } }`}, nil)
		if a.Status != 429 || a.code() != "QUOTA_EXCEEDED" || a.Errors[0].Extensions.Context["limit"] != float64(quota) || a.Header.Get("Retry-After") == "" {
			t.Fatalf("cost 21 with 10 left: %s %v", a, a.Header)
		}
		if _, ok := a.Top["data"]; ok || len(c.requests("")) != 0 {
			t.Fatalf("a refused query ran: %s\n%s", a.Raw, c.summary())
		}
		if a = post(t, in.URL, u.aliceAcme, request{Query: `{ customer(id: "cus_acme_001") { id } }`}, nil); a.Status != 200 || len(a.Errors) > 0 {
			t.Fatalf("cost 1 with 10 left: %s", a)
		}
	})
}

// planFromOverride (a step of TestLimits): a company quota override's plan
// sets its GraphQL limits and rate, whatever plan its token names.
func planFromOverride(t *testing.T, adminURL, base string, u users) {
	t.Helper()
	// before: globex is on free, the deep query is refused
	if a := post(t, base, u.bobGlobex, request{Query: tooDeep}, nil); a.Status != 400 || a.code() != "QUERY_TOO_COMPLEX" {
		t.Fatalf("globex on free: %s", a)
	}
	resp := httpt.Do(t, http.MethodPost, adminURL+"/config/apps/erp/quota_overrides", []byte(`{"globex":{"plan":"standard"}}`),
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("quota override: %d %s", resp.StatusCode, resp.Body)
	}
	// the same token now runs under standard's limits and rate
	a := post(t, base, u.bobGlobex, request{Query: tooDeep}, nil)
	if a.Status != 200 || len(a.Errors) > 0 || !strings.HasPrefix(a.Header.Get("RateLimit"), `"standard";`) {
		t.Fatalf("globex overridden to standard: %s %v", a, a.Header)
	}
}

// rateRefusal checks a 429 RATE_LIMITED in the GraphQL shape.
func rateRefusal(t *testing.T, a *answer) {
	t.Helper()
	if a.Status != 429 || len(a.Errors) != 1 || a.code() != "RATE_LIMITED" {
		t.Fatalf("want 429 RATE_LIMITED: %s", a)
	}
	if _, ok := a.Top["data"]; ok {
		t.Fatalf("a refused request has data: %s", a.Raw)
	}
	retry, err := strconv.Atoi(a.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q", a.Header.Get("Retry-After"))
	}
	ctx := a.Errors[0].Extensions.Context
	if ctx["limit"] != float64(60) || ctx["policy"] != "free" || ctx["retry_after"] != float64(retry) {
		t.Fatalf("refusal context %v (Retry-After %d)", ctx, retry)
	}
}
