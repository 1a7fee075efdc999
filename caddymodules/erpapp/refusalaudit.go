package erpapp

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	subdirectives["refusal_audit"] = parseRefusalAudit
}

// RefusalAudit tunes how the edge audits the tokens and API keys it refuses
// on proxied routes (erp_jwt, erp_api_key), in the erp app's
// `refusal_audit`:
//
//	erp {
//		refusal_audit {
//			sample   10
//			interval 1m
//			buffer   256
//		}
//	}
//
// Every refusal is counted in Prometheus (erpgate_auth_decisions_total).
// The audit trail gets, per provider and reason, the first Sample refusals
// of each Interval one by one (`edge.credential_refused`: address, reason,
// request id, an API key's public prefix; never the credential), and one
// `edge.credential_refused_summary` record per Interval with the count of
// the rest, so a flood of bad credentials adds at most Sample + 1 records
// per reason and interval. Records are written off the request path,
// through a buffer of Buffer records; a refusal that finds it full is
// counted in the summary instead (and in
// erpgate_auth_refusal_audit_total{outcome="dropped"}), never waited for.
// The trail is the in-process auth service's (erp_authsvc); a config with
// none logs the same records as log lines.
type RefusalAudit struct {
	// Sample is how many refusals per provider and reason are recorded one
	// by one in each interval. Default: 10.
	Sample int `json:"sample,omitempty"`
	// Interval is the length of a sampling window; a window opens at its
	// reason's first refusal. Default: 1m.
	Interval caddy.Duration `json:"interval,omitempty"`
	// Buffer is the number of records waiting to be written. Default: 256.
	Buffer int `json:"buffer,omitempty"`
}

// parseRefusalAudit parses `refusal_audit { sample N; interval D; buffer N }`.
func parseRefusalAudit(a *App, d *caddyfile.Dispenser) error {
	ra := new(RefusalAudit)
	err := parseSampling(d, "refusal_audit", &ra.Sample, &ra.Interval, func(name, v string) error {
		if name != "buffer" {
			return d.Errf("refusal_audit: unknown subdirective %q", name)
		}
		return positiveInt(d, "refusal_audit", name, v, &ra.Buffer)
	})
	if err != nil {
		return err
	}
	a.RefusalAudit = ra
	return nil
}

// parseSampling parses a block of one-argument subdirectives with the
// sampling pair `sample N` and `interval D` (refusal_audit, refusal_log);
// other names go to more.
func parseSampling(d *caddyfile.Dispenser, block string, sample *int, interval *caddy.Duration, more func(name, v string) error) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		if !d.NextArg() {
			return d.ArgErr()
		}
		v := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "sample":
			return positiveInt(d, block, name, v, sample)
		case "interval":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s: interval must be a positive duration", block)
			}
			*interval = caddy.Duration(dur)
			return nil
		default:
			return more(name, v)
		}
	})
}

func positiveInt(d *caddyfile.Dispenser, block, name, v string, dst *int) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return d.Errf("%s: %s must be a positive number", block, name)
	}
	*dst = n
	return nil
}
