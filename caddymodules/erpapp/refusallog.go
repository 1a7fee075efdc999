package erpapp

import (
	"context"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/internal/refusallog"
)

func init() {
	subdirectives["refusal_log"] = parseRefusalLog
}

// RefusalLog tunes how the log lines of refusals are sampled, in the erp
// app's `refusal_log`:
//
//	erp {
//		refusal_log {
//			sample     10
//			interval   1m
//			access_log sampled
//		}
//	}
//
// Refusals are the answers the edge gives a request it won't serve: a bad
// or missing token or API key (erp_jwt, erp_api_key), a cross-company or
// unpermitted request (erp_authz), a rate limit or quota (erp_quota), a
// failed or throttled login or second factor (erp_authsvc), and the 503s
// of these checks while a dependency is down. Per logger, message and
// reason, the first Sample refusals of each Interval are logged as usual —
// their own line and their request's line in Caddy's access log — and the
// rest write no line at all: one summary line per window (message `refusals
// not logged one by one`, with `message`, `reason`, `count`, `logged`,
// `total`, `window_start`, `window_end`) stands for them. A flood thus
// writes at most 2 × Sample + 1 lines per reason and interval, whatever
// its rate. Requests that are served are logged one by one as before, and
// the Prometheus counters (erpgate_auth_decisions_total,
// erpgate_quota_decisions_total) count every refusal.
type RefusalLog struct {
	// Sample is how many refusals per logger, message and reason are
	// logged one by one in each interval. Default: 10.
	Sample int `json:"sample,omitempty"`
	// Interval is the length of a sampling window; a window opens at its
	// reason's first refusal. Default: 1m.
	Interval caddy.Duration `json:"interval,omitempty"`
	// AccessLog says what happens to the access log line of a refusal that
	// is not logged: `sampled` leaves it out (the summary counts it), `all`
	// keeps every access log line, so only erpgate's own lines are
	// sampled. Default: `sampled`.
	AccessLog string `json:"access_log,omitempty"`
}

// Values of RefusalLog.AccessLog.
const (
	AccessLogSampled = "sampled"
	AccessLogAll     = "all"
)

func (a *App) provisionRefusalLog() error {
	rl := a.RefusalLog
	if rl == nil {
		return nil
	}
	if rl.Sample < 0 || rl.Interval < 0 {
		return errors.New("erp: refusal_log: sample and interval must be positive")
	}
	switch rl.AccessLog {
	case "", AccessLogSampled, AccessLogAll:
		return nil
	}
	return errors.New("erp: refusal_log: access_log must be sampled or all")
}

// Refusals is the config's sampler of refusal log lines (see RefusalLog),
// shared by every module of the config and closed with it (writing the
// summaries of its open windows). Modules take their logger from it with
// For.
func (a *App) Refusals() *refusallog.Log { return a.refusals }

// newRefusalLog makes the config's refusal log (its goroutine starts at
// the first refusal).
func (a *App) newRefusalLog() *refusallog.Log {
	o := refusallog.Options{Skip: skipAccessLog}
	if rl := a.RefusalLog; rl != nil {
		o.Sample, o.Interval = rl.Sample, time.Duration(rl.Interval)
		if rl.AccessLog == AccessLogAll {
			o.Skip = nil
		}
	}
	return refusallog.New(a.ctx, o)
}

// skipAccessLog leaves the request's line out of Caddy's access log.
func skipAccessLog(ctx context.Context) {
	caddyhttp.SetVar(ctx, caddyhttp.LogSkipVar, true)
}

// parseRefusalLog parses `refusal_log { sample N; interval D; access_log sampled|all }`.
func parseRefusalLog(a *App, d *caddyfile.Dispenser) error {
	rl := new(RefusalLog)
	err := parseSampling(d, "refusal_log", &rl.Sample, &rl.Interval, func(name, v string) error {
		if name != "access_log" {
			return d.Errf("refusal_log: unknown subdirective %q", name)
		}
		if v != AccessLogSampled && v != AccessLogAll {
			return d.Errf("refusal_log: access_log must be sampled or all")
		}
		rl.AccessLog = v
		return nil
	})
	if err != nil {
		return err
	}
	a.RefusalLog = rl
	return nil
}
