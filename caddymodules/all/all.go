// Package all blank-imports every erpgate Caddy module. It owns nothing but
// that list; only cmd/ and the root package (xcaddy's entry) may import it,
// so no module can import it back.
package all

import (
	_ "github.com/erpgate/erpgate/caddymodules/apikey"
	_ "github.com/erpgate/erpgate/caddymodules/authsvc"
	_ "github.com/erpgate/erpgate/caddymodules/authz"
	_ "github.com/erpgate/erpgate/caddymodules/batch"
	_ "github.com/erpgate/erpgate/caddymodules/bodylimit"
	_ "github.com/erpgate/erpgate/caddymodules/bulk"
	_ "github.com/erpgate/erpgate/caddymodules/cache"
	_ "github.com/erpgate/erpgate/caddymodules/companyjwt"
	_ "github.com/erpgate/erpgate/caddymodules/demo"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/jsonrpc"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/odata"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/rest"
	_ "github.com/erpgate/erpgate/caddymodules/envelope"
	_ "github.com/erpgate/erpgate/caddymodules/erpapp"
	_ "github.com/erpgate/erpgate/caddymodules/events"
	_ "github.com/erpgate/erpgate/caddymodules/exportjobs"
	_ "github.com/erpgate/erpgate/caddymodules/graphql"
	_ "github.com/erpgate/erpgate/caddymodules/handoff"
	_ "github.com/erpgate/erpgate/caddymodules/health"
	_ "github.com/erpgate/erpgate/caddymodules/idempotency"
	_ "github.com/erpgate/erpgate/caddymodules/importer"
	_ "github.com/erpgate/erpgate/caddymodules/ipblock"
	_ "github.com/erpgate/erpgate/caddymodules/merge"
	_ "github.com/erpgate/erpgate/caddymodules/quota"
	_ "github.com/erpgate/erpgate/caddymodules/redactquery"
	_ "github.com/erpgate/erpgate/caddymodules/upstreams"
	_ "github.com/erpgate/erpgate/caddymodules/usage"
	_ "github.com/erpgate/erpgate/caddymodules/version"
	_ "github.com/erpgate/erpgate/caddymodules/webhooks"
)
