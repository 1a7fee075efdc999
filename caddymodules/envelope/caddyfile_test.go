package envelope

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, []adapttest.Case{
		{
			Name: "plain and in handle_errors",
			Caddyfile: `:8080 {
	route {
		erp_envelope
		respond "x"
	}
	handle_errors {
		erp_envelope
	}
}`,
			JSON: `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"erp_envelope"},{"body":"x","handler":"static_response"}]}]}]}],"errors":{"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"erp_envelope"}]}]}]}]}}}}}}`,
		},
		{
			Name:      "max_buffer",
			Caddyfile: ":8080 {\n\terp_envelope {\n\t\tmax_buffer 65536\n\t}\n}",
			JSON:      `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"erp_envelope","max_buffer":65536}]}]}}}}}`,
		},
		{
			Name:      "strip_headers extends the default",
			Caddyfile: ":8080 {\n\terp_envelope {\n\t\tstrip_headers default X-Employee-ID X-SSO-*\n\t}\n}",
			JSON:      `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"erp_envelope","strip_headers":["default","X-Employee-ID","X-SSO-*"]}]}]}}}}}`,
		},
		{
			Name:      "strip_headers replaces the default",
			Caddyfile: ":8080 {\n\terp_envelope {\n\t\tstrip_headers X-Tenant\n\t\tmax_buffer 2048\n\t}\n}",
			JSON:      `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"erp_envelope","max_buffer":2048,"strip_headers":["X-Tenant"]}]}]}}}}}`,
		},
		{Name: "strip_headers without names", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tstrip_headers\n\t}\n}", Err: "wrong argument count"},
		{Name: "strip_headers bad name", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tstrip_headers X-*-Id\n\t}\n}", Err: "not a header name"},
		{Name: "argument rejected", Caddyfile: ":8080 {\n\terp_envelope on\n}", Err: "wrong argument count"},
		{Name: "unknown subdirective", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tbuffer 1\n\t}\n}", Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tmax_buffer 2048\n\t\tmax_buffer 4096\n\t}\n}", Err: "duplicate"},
		{Name: "bad size", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tmax_buffer lots\n\t}\n}", Err: "positive number"},
	})
}
