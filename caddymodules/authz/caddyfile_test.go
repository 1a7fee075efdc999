package authz

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	wrap := func(body string) string { return ":8080 {\n\troute {\n" + body + "\n\t}\n}" }
	head := `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[`
	tail := `]}]}]}]}}}}}`
	adapttest.Run(t, []adapttest.Case{
		{
			Name:      "bare",
			Caddyfile: wrap("\t\terp_auth"),
			JSON:      head + `{"handler":"authentication","providers":{"erp_api_key":{},"erp_jwt":{}}},{"handler":"erp_authz"}` + tail,
		},
		{
			Name: "remote issuer, no api keys, required scope",
			Caddyfile: wrap(`		erp_auth {
			jwks_url https://id.example/jwks.json
			issuer https://id.example
			audience erpgate-api
			leeway 10s
			refresh_interval 30s
			min_refetch 2s
			negative_ttl 5s
			api_keys off
			require invoices:read ledger:read
		}`),
			JSON: head + `{"handler":"authentication","providers":{"erp_jwt":{"audience":"erpgate-api","issuer":"https://id.example","jwks_url":"https://id.example/jwks.json","leeway":10000000000,"min_refetch":2000000000,"negative_ttl":5000000000,"refresh_interval":30000000000}}},{"handler":"erp_authz","require":["invoices:read","ledger:read"]}` + tail,
		},
		{
			Name: "remote introspection",
			Caddyfile: wrap(`		erp_auth {
			introspect_url https://auth.internal/api/v1/auth/introspect
			introspect_secret {env.ERP_INTROSPECTION_SECRET}
			key_cache_ttl 10s
		}`),
			JSON: head + `{"handler":"authentication","providers":{"erp_api_key":{"cache_ttl":10000000000,"introspect_secret":"{env.ERP_INTROSPECTION_SECRET}","introspect_url":"https://auth.internal/api/v1/auth/introspect"},"erp_jwt":{}}},{"handler":"erp_authz"}` + tail,
		},
		{
			Name:      "revocation staleness",
			Caddyfile: wrap("\t\terp_auth {\n\t\t\trevocation_staleness 10s\n\t\t}"),
			JSON:      head + `{"handler":"authentication","providers":{"erp_api_key":{},"erp_jwt":{"revocation_staleness":10000000000}}},{"handler":"erp_authz"}` + tail,
		},
		{Name: "bad revocation staleness", Caddyfile: wrap("\t\terp_auth {\n\t\t\trevocation_staleness -1s\n\t\t}"), Err: "positive duration"},
		{
			Name:      "erp_authz alone",
			Caddyfile: wrap("\t\terp_authz {\n\t\t\trequire x:read\n\t\t}"),
			JSON:      head + `{"handler":"erp_authz","require":["x:read"]}` + tail,
		},
		{
			Name:      "backend named for the edge assertion",
			Caddyfile: wrap("\t\terp_auth {\n\t\t\tbackend invoices\n\t\t\tapi_keys off\n\t\t}"),
			JSON:      head + `{"handler":"authentication","providers":{"erp_jwt":{}}},{"backend":"invoices","handler":"erp_authz"}` + tail,
		},
		{
			Name:      "erp_authz with a backend",
			Caddyfile: wrap("\t\terp_authz {\n\t\t\tbackend ledger\n\t\t\trequire ledger:read\n\t\t}"),
			JSON:      head + `{"backend":"ledger","handler":"erp_authz","require":["ledger:read"]}` + tail,
		},
		{Name: "backend without a name", Caddyfile: wrap("\t\terp_auth {\n\t\t\tbackend\n\t\t}"), Err: "wrong argument count"},
		{Name: "backend with two names", Caddyfile: wrap("\t\terp_authz {\n\t\t\tbackend a b\n\t\t}"), Err: "wrong argument count"},
		{Name: "backend twice", Caddyfile: wrap("\t\terp_auth {\n\t\t\tbackend a\n\t\t\tbackend b\n\t\t}"), Err: "duplicate"},
		{Name: "argument", Caddyfile: wrap("\t\terp_auth now"), Err: "wrong argument count"},
		{Name: "unknown", Caddyfile: wrap("\t\terp_auth {\n\t\t\tjku x\n\t\t}"), Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: wrap("\t\terp_auth {\n\t\t\tissuer a\n\t\t\tissuer b\n\t\t}"), Err: "duplicate"},
		{Name: "missing value", Caddyfile: wrap("\t\terp_auth {\n\t\t\tissuer\n\t\t}"), Err: "wrong argument count"},
		{Name: "bad duration", Caddyfile: wrap("\t\terp_auth {\n\t\t\tleeway soon\n\t\t}"), Err: "positive duration"},
		{Name: "bad switch", Caddyfile: wrap("\t\terp_auth {\n\t\t\tapi_keys maybe\n\t\t}"), Err: "on or off"},
		{Name: "require without scopes", Caddyfile: wrap("\t\terp_auth {\n\t\t\trequire\n\t\t}"), Err: "wrong argument count"},
	})
}
