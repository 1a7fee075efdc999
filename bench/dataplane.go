package main

import "fmt"

// Two more variants of the full chain, beside "full chain (memory)" in the
// same process and round:
//   - the data-plane chain: Caddyfile.example's `handle /api/*` with the
//     data-plane handlers (erp_body_limit, erp_bulk, erp_cache at TTL 0 —
//     off, as the example ships it —, erp_merge, erp_idempotency): what
//     they cost a plain GET that none of them acts on;
//   - the full chain with Caddy's `tracing` and no collector listening (the
//     OTLP exporter Caddy makes by default finds nobody): what tracing
//     costs, Caddy's server span and erpgate's own spans (internal/tracing).
//     Its config parses on binaries from before erpgate's spans, so the
//     same target measures before and after.
const (
	dataPlaneName = "data-plane chain (memory)"
	tracedName    = "full chain + tracing, no collector (memory)"
)

// dataPlaneSites is the two sites; the data-plane one only when its target
// is selected (older binaries lack erp_body_limit).
func dataPlaneSites(port, traced int) string {
	out := fmt.Sprintf(`
http://:%d {
	erp_envelope
	tracing {
		span erpgate
	}
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan standard 1000000000/m
		}
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, traced)
	if !selected(dataPlaneName, false) {
		return out
	}
	return out + fmt.Sprintf(`
http://:%d {
	erp_envelope
	handle /api/* {
		erp_version
		erp_auth
		erp_body_limit {
			plan standard 10MiB
			default 1MiB
		}
		erp_quota {
			plan standard 1000000000/m
		}
		erp_bulk
		erp_cache {
			ttl 0
		}
		erp_merge
		erp_idempotency
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, port)
}
