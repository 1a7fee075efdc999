package quota

// This file has no Caddy import: plans and what is in force for a request.

import (
	"fmt"
	"time"

	"github.com/erpgate/erpgate/internal/limit"
)

// Plan is one plan's numbers. A plan with neither a rate nor a quota is
// unlimited.
type Plan struct {
	// Rate is the company's short-term rate, `<n>/<unit>`: 60/m, 6000/1m,
	// 100/10s (see limit.ParseRate), counted over a sliding window.
	// Default: none (no short-term limit).
	Rate string `json:"rate,omitempty"`

	// ClientRate is a sub-limit for each user (JWT) or API key of the
	// company, in the same form, counted alongside the company's. Default:
	// none.
	ClientRate string `json:"client_rate,omitempty"`

	// Quota is how many requests the company may make per billing period
	// (a month from its billing day). 0: no quota. Default: 0.
	Quota int64 `json:"quota,omitempty"`

	rate, clientRate limit.Rate
}

// defaultPlans are the plans of DESIGN.md, for plan names the config does
// not list.
func defaultPlans() map[string]*Plan {
	return map[string]*Plan{
		"free":       {Rate: "60/m", Quota: 10_000},
		"standard":   {Rate: "6000/m", Quota: 1_000_000},
		"premium":    {Rate: "30000/m", Quota: 10_000_000},
		"enterprise": {},
	}
}

func (p *Plan) provision(name string) error {
	if !validPlanName(name) {
		return fmt.Errorf("plan %q: names are [a-z0-9_-], at most 32 bytes", name)
	}
	var err error
	p.rate, p.clientRate = limit.Rate{}, limit.Rate{}
	if p.Rate != "" {
		if p.rate, err = limit.ParseRate(p.Rate); err != nil {
			return fmt.Errorf("plan %q: %w", name, err)
		}
	}
	if p.ClientRate != "" {
		if p.clientRate, err = limit.ParseRate(p.ClientRate); err != nil {
			return fmt.Errorf("plan %q: client_rate: %w", name, err)
		}
	}
	if p.Quota < 0 {
		return fmt.Errorf("plan %q: quota must not be negative", name)
	}
	return nil
}

func validPlanName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// override is a company's QuotaOverride, as the resolution needs it.
type override struct {
	plan             string
	rate, clientRate *limit.Rate // nil: the plan's; zero: unlimited
	quota            *int64
	billingDay       int
	loc              *time.Location
}

// terms is what is in force for one request.
type terms struct {
	plan     string
	policies [3]limit.Policy
	limits   [3]limit.Limit
	n        int
	quotaAt  int // index of the quota in limits, -1 when none
	start    time.Time
}

// keys are the store keys of one company (prefix included).
type keys struct {
	rate, quota string // quota: without the period
}

// resolve puts together the limits in force for company (on plan, with the
// override ov) at now. clientKey is the key of the user's or API key's
// sub-limit, "" for none; it is asked only when a client rate applies.
func (h *Handler) resolve(now time.Time, plan string, ov *override, clientKey func() string, k keys, t *terms) {
	if ov != nil && ov.plan != "" {
		plan = ov.plan
	}
	p := h.plans[plan]
	if p == nil {
		plan = h.DefaultPlan
		p = h.plans[plan]
	}
	t.plan, t.n, t.quotaAt = plan, 0, -1
	rate, clientRate, quota := p.rate, p.clientRate, p.Quota
	day, loc := h.BillingDay, h.loc
	if ov != nil {
		if ov.rate != nil {
			rate = *ov.rate
		}
		if ov.clientRate != nil {
			clientRate = *ov.clientRate
		}
		if ov.quota != nil {
			quota = *ov.quota
		}
		if ov.billingDay != 0 {
			day = ov.billingDay
		}
		if ov.loc != nil {
			loc = ov.loc
		}
	}
	if !rate.IsZero() {
		t.policies[t.n] = limit.Policy{Name: plan, Max: rate.Max, Window: rate.Window}
		t.limits[t.n] = limit.Limit{Key: k.rate, Kind: limit.Sliding, Max: rate.Max, Window: rate.Window}
		t.n++
	}
	if !clientRate.IsZero() {
		if ck := clientKey(); ck != "" {
			t.policies[t.n] = limit.Policy{Name: plan + "-client", Max: clientRate.Max, Window: clientRate.Window}
			t.limits[t.n] = limit.Limit{Key: ck, Kind: limit.Sliding, Max: clientRate.Max, Window: clientRate.Window}
			t.n++
		}
	}
	if quota > 0 {
		start, end := limit.BillingPeriod(now, day, loc)
		t.start = start
		t.quotaAt = t.n
		t.policies[t.n] = limit.Policy{Name: plan + "-month", Max: quota, Window: end.Sub(start)}
		t.limits[t.n] = limit.Limit{Key: k.quota + start.Format("2006-01-02"), Kind: limit.Fixed, Max: quota, End: end}
		t.n++
	}
}
