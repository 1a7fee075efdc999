package version

import (
	"testing"

	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
	_ "github.com/erpgate/erpgate/caddymodules/upstreams"
)

func TestCaddyfileAdapt(t *testing.T) {
	site := func(body string) string { return ":8080 {\n\troute {\n" + body + "\n\t}\n}" }
	route := func(handlers string) string {
		return `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[` + handlers + `]}]}]}]}}}}}`
	}
	adapttest.Run(t, []adapttest.Case{
		{Name: "plain", Caddyfile: site("\t\terp_version"), JSON: route(`{"handler":"erp_version"}`)},
		{
			Name:      "options",
			Caddyfile: site("\t\terp_version {\n\t\t\tprefix /erp\n\t\t\tcompany {http.request.header.X-ERP-Company-ID}\n\t\t}"),
			JSON:      route(`{"company":"{http.request.header.X-ERP-Company-ID}","handler":"erp_version","prefix":"/erp"}`),
		},
		{
			Name:      "with dynamic erp upstreams",
			Caddyfile: site("\t\terp_version\n\t\treverse_proxy {\n\t\t\tdynamic erp\n\t\t}"),
			JSON:      route(`{"handler":"erp_version"},{"dynamic_upstreams":{"source":"erp"},"handler":"reverse_proxy"}`),
		},
		{Name: "argument", Caddyfile: site("\t\terp_version v1"), Err: "wrong argument count"},
		{Name: "unknown subdirective", Caddyfile: site("\t\terp_version {\n\t\t\tdefault v2\n\t\t}"), Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: site("\t\terp_version {\n\t\t\tprefix /a\n\t\t\tprefix /b\n\t\t}"), Err: "duplicate"},
		{Name: "missing value", Caddyfile: site("\t\terp_version {\n\t\t\tprefix\n\t\t}"), Err: "wrong argument count"},
		{Name: "extra value", Caddyfile: site("\t\terp_version {\n\t\t\tcompany a b\n\t\t}"), Err: "wrong argument count"},
		{Name: "dynamic erp takes no argument", Caddyfile: site("\t\treverse_proxy {\n\t\t\tdynamic erp invoices\n\t\t}"), Err: "wrong argument count"},
		{Name: "dynamic erp takes no block", Caddyfile: site("\t\treverse_proxy {\n\t\t\tdynamic erp {\n\t\t\t\tbackend x\n\t\t\t}\n\t\t}"), Err: "no options"},
	})
}
