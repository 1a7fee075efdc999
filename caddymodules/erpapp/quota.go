package erpapp

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/limit"
)

func init() {
	subdirectives["quota_override"] = parseQuotaOverride
	repeatable["quota_override"] = true
}

// QuotaOverride changes erp_quota's numbers for one company, in the
// `quota_overrides` map of the erp app (keyed by company id). An admin
// changes it at run time through Caddy's admin API, e.g.
//
//	PUT    /config/apps/erp/quota_overrides/acme  {"rate":"12000/m","quota":5000000,"billing_day":15,"time_zone":"Europe/Berlin"}
//	PATCH  /config/apps/erp/quota_overrides/acme/rate  "600/m"
//	DELETE /config/apps/erp/quota_overrides/acme
//
// Caddy then loads the new config gracefully; the counters (in Redis, or
// the process's memory store) are kept, so a company's current window and
// month carry over to its new numbers.
//
// Every field is optional: what is not set comes from the company's plan
// and from erp_quota's defaults.
type QuotaOverride struct {
	// Plan puts the company on this plan of erp_quota, whatever plan its
	// tokens and API keys name. Default: the plan in the credential.
	Plan string `json:"plan,omitempty"`

	// Rate replaces the plan's short-term rate: `<n>/<unit>` (60/m, 100/10s)
	// or `unlimited`. Default: the plan's.
	Rate string `json:"rate,omitempty"`

	// ClientRate replaces the plan's sub-limit per user or API key
	// (`<n>/<unit>` or `unlimited`). Default: the plan's.
	ClientRate string `json:"client_rate,omitempty"`

	// Quota replaces the plan's requests per billing period (a month);
	// 0 means no quota. Default: the plan's.
	Quota *int64 `json:"quota,omitempty"`

	// BillingDay is the day of the month (1–31) the company's billing
	// period starts, at midnight in TimeZone; in shorter months, their
	// last day. Default: erp_quota's billing_day (1).
	BillingDay int `json:"billing_day,omitempty"`

	// TimeZone is the company's IANA time zone (Europe/Berlin), in which
	// its billing day starts. Default: erp_quota's time_zone (UTC).
	TimeZone string `json:"time_zone,omitempty"`

	rate, clientRate *limit.Rate
	loc              *time.Location
}

// RateOverride is the overridden rate: nil when not overridden, a zero
// Rate for unlimited.
func (o *QuotaOverride) RateOverride() *limit.Rate { return o.rate }

// ClientRateOverride is the overridden sub-limit, like RateOverride.
func (o *QuotaOverride) ClientRateOverride() *limit.Rate { return o.clientRate }

// Location is the company's time zone, nil when not set.
func (o *QuotaOverride) Location() *time.Location { return o.loc }

// QuotaOverrideFor returns company's override, or nil.
func (a *App) QuotaOverrideFor(company string) *QuotaOverride {
	return a.QuotaOverrides[company]
}

func parseOverrideRate(s string) (*limit.Rate, error) {
	switch s {
	case "":
		return nil, nil
	case "unlimited":
		return &limit.Rate{}, nil
	}
	r, err := limit.ParseRate(s)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// provisionQuotaOverrides checks the overrides and parses their numbers.
func (a *App) provisionQuotaOverrides() error {
	for company, o := range a.QuotaOverrides {
		if company == "" || o == nil {
			return fmt.Errorf("erp: quota_overrides: empty company or override")
		}
		var err error
		if o.rate, err = parseOverrideRate(o.Rate); err != nil {
			return fmt.Errorf("erp: quota_overrides %q: %w", company, err)
		}
		if o.clientRate, err = parseOverrideRate(o.ClientRate); err != nil {
			return fmt.Errorf("erp: quota_overrides %q: client_rate: %w", company, err)
		}
		if o.Quota != nil && *o.Quota < 0 {
			return fmt.Errorf("erp: quota_overrides %q: quota must not be negative", company)
		}
		if o.BillingDay < 0 || o.BillingDay > 31 {
			return fmt.Errorf("erp: quota_overrides %q: billing_day must be 1 to 31", company)
		}
		o.loc = nil
		if o.TimeZone != "" {
			if o.loc, err = time.LoadLocation(o.TimeZone); err != nil {
				return fmt.Errorf("erp: quota_overrides %q: time_zone: %w", company, err)
			}
		}
	}
	return nil
}

// parseQuotaOverride parses one `quota_override` subdirective of the erp block:
//
//	quota_override <company> {
//		plan        <name>
//		rate        <n>/<unit>|unlimited
//		client_rate <n>/<unit>|unlimited
//		quota       <n>
//		billing_day <1-31>
//		time_zone   <IANA zone>
//	}
func parseQuotaOverride(a *App, d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	company := d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if _, dup := a.QuotaOverrides[company]; dup {
		return d.Errf("duplicate quota_override %q", company)
	}
	o := new(QuotaOverride)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("quota_override %s: duplicate subdirective %q", company, sub)
		}
		seen[sub] = true
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		switch sub {
		case "plan":
			o.Plan = args[0]
		case "rate":
			o.Rate = args[0]
		case "client_rate":
			o.ClientRate = args[0]
		case "quota":
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return d.Errf("quota_override %s: quota: %q is not a number", company, args[0])
			}
			o.Quota = &n
		case "billing_day":
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return d.Errf("quota_override %s: billing_day: %q is not a number", company, args[0])
			}
			o.BillingDay = n
		case "time_zone":
			o.TimeZone = args[0]
		default:
			return d.Errf("quota_override %s: unknown subdirective %q", company, sub)
		}
	}
	if a.QuotaOverrides == nil {
		a.QuotaOverrides = map[string]*QuotaOverride{}
	}
	a.QuotaOverrides[company] = o
	return nil
}

// Quota is what erp_usage reads of the config's erp_quota: a company's
// current use of its limits, read without counting.
type Quota interface {
	Usage(r *http.Request) (*QuotaUsage, error)
	// Charge counts n requests (n ≥ 1) against the rate and quota of r's
	// verified company and plan in one decision, as erp_quota counts one
	// for each request it passes, and sets the rate-limit headers on w. A
	// refusal (RATE_LIMITED, QUOTA_EXCEEDED, or SERVICE_UNAVAILABLE under
	// on_redis_down deny) is returned with its Retry-After header and
	// counts nothing; nil means admitted. erp_graphql charges a query's cost.
	Charge(w http.ResponseWriter, r *http.Request, n int64) *contract.Error
}

// SetQuota is called by erp_quota's Provision; the config's first erp_quota
// handler is the one `GET /api/v1/usage` reads.
func (a *App) SetQuota(q Quota) {
	a.mu.Lock()
	if a.quota == nil {
		a.quota = q
	}
	a.mu.Unlock()
}

// Quota is the config's first erp_quota handler, or nil when it has none.
// Call it at request time: handlers provision in config order.
func (a *App) Quota() Quota {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.quota
}

// QuotaUsage is a company's current use of its limits, as `GET
// /api/v1/usage` shows it.
type QuotaUsage struct {
	Plan       string       `json:"plan"`
	Unlimited  bool         `json:"unlimited"`
	Rate       *WindowUsage `json:"rate,omitempty"`
	ClientRate *WindowUsage `json:"client_rate,omitempty"`
	Quota      *PeriodUsage `json:"quota,omitempty"`
	// Store is where the numbers come from: redis, memory (the embedded
	// default) or local (this instance's approximation while Redis is down).
	Store string `json:"store"`
}

// WindowUsage is a sliding window's state.
type WindowUsage struct {
	Policy        string    `json:"policy"`
	Limit         int64     `json:"limit"`
	WindowSeconds int64     `json:"window_seconds"`
	Used          int64     `json:"used"`
	Remaining     int64     `json:"remaining"`
	Reset         time.Time `json:"reset"` // when the oldest counted request leaves the window
}

// PeriodUsage is a billing period's state.
type PeriodUsage struct {
	Policy      string    `json:"policy"`
	Limit       int64     `json:"limit"`
	Used        int64     `json:"used"`
	Remaining   int64     `json:"remaining"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}
