// Package routing drives the running gateway binary through erp_version,
// the erp upstream source and the three dialects: versioned routing,
// deprecation and sunset, one query convention over REST, OData and
// JSON-RPC, and backends registered at run time through the admin API.
package routing

import (
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// caddyfile is the stack under test: the demo ERP behind erp_version, with
// backends in all three dialects. Until erp_auth lands, the company is set
// by config after erp_version (as Caddyfile.example does), and erp_version
// reads it from that header for the deprecated-call counter.
const caddyfile = `{
	admin {$ERP_ADMIN}
	metrics
	erp {
		backend invoices {
			dialect rest {
				filter_fields status customer_id
			}
			version v1 http://{$ERP_DEMO_LISTEN}/v1 {
				deprecated 2026-01-01
				sunset 2099-06-30
			}
			version v2 http://{$ERP_DEMO_LISTEN}/v2
		}
		backend customers {
			version v1 http://{$ERP_DEMO_LISTEN}/v1
			version v2 http://{$ERP_DEMO_LISTEN}/v2
		}
		backend products {
			dialect rest {
				filter_fields currency sku
			}
			version v1 http://{$ERP_DEMO_LISTEN}/v1
		}
		backend products-odata {
			dialect odata
			path /Products
			version v1 http://{$ERP_DEMO_LISTEN}/odata/v1
		}
		backend ledger {
			dialect odata
			path /LedgerEntries
			version v1 http://{$ERP_DEMO_LISTEN}/odata/v1
		}
		backend catalog {
			dialect jsonrpc {
				model product.product
			}
			version v1 http://{$ERP_DEMO_LISTEN}/jsonrpc
		}
		backend archive {
			version v1 http://{$ERP_DEMO_LISTEN}/v1 {
				deprecated 2020-01-01
				sunset 2021-01-01
			}
			version v2 http://{$ERP_DEMO_LISTEN}/v2
			path /invoices
		}
	}
}

http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /api/* {
			erp_version {
				company {http.request.header.X-ERP-Company-ID}
			}
			request_header X-ERP-Company-ID {$ERP_TEST_COMPANY:acme}
			reverse_proxy {
				dynamic erp
				header_up Host {upstream_hostport}
				lb_retries 2
				request_buffers 64KiB
				# retry reads when a kept-alive connection to the backend broke:
				# GETs, and requests marked idempotent (a JSON-RPC read is a POST
				# with an Idempotency-Key); small bodies are buffered so a retry
				# can send them again
				lb_retry_match {
					method GET
				}
				lb_retry_match {
					header Idempotency-Key *
				}
				transport http {
					dial_timeout 2s
				}
			}
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}

# no erp_auth here, so no edge assertion: the demo reads the company
# header the route sets (tests of routing alone)
http://{$ERP_DEMO_LISTEN} {
	erp_demo {
		insecure_skip_assertion
	}
}
`

func start(t *testing.T, env map[string]string) *stacktest.Instance {
	t.Helper()
	return stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: env})
}

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }
