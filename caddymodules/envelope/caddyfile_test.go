package envelope

import (
	"testing"

	"github.com/erpgate/erpgate/internal/adapttest"
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
		{Name: "argument rejected", Caddyfile: ":8080 {\n\terp_envelope on\n}", Err: "wrong argument count"},
		{Name: "unknown subdirective", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tbuffer 1\n\t}\n}", Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tmax_buffer 2048\n\t\tmax_buffer 4096\n\t}\n}", Err: "duplicate"},
		{Name: "bad size", Caddyfile: ":8080 {\n\terp_envelope {\n\t\tmax_buffer lots\n\t}\n}", Err: "positive number"},
	})
}
