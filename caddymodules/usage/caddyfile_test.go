package usage

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	wrap := func(body string) string { return ":8080 {\n\troute {\n" + body + "\n\t}\n}" }
	head := `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[`
	tail := `]}]}]}]}}}}}`
	adapttest.Run(t, []adapttest.Case{
		{Name: "bare", Caddyfile: wrap("\t\terp_usage"), JSON: head + `{"handler":"erp_usage"}` + tail},
		{Name: "company placeholder", Caddyfile: wrap("\t\terp_usage {\n\t\t\tcompany {http.request.header.X-Company}\n\t\t}"),
			JSON: head + `{"company":"{http.request.header.X-Company}","handler":"erp_usage"}` + tail},
		{Name: "argument", Caddyfile: wrap("\t\terp_usage now"), Err: "wrong argument count"},
		{Name: "unknown", Caddyfile: wrap("\t\terp_usage {\n\t\t\tplan x\n\t\t}"), Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: wrap("\t\terp_usage {\n\t\t\tcompany a\n\t\t\tcompany b\n\t\t}"), Err: "duplicate"},
		{Name: "missing value", Caddyfile: wrap("\t\terp_usage {\n\t\t\tcompany\n\t\t}"), Err: "wrong argument count"},
	})
}
