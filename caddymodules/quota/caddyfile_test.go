package quota_test

import (
	_ "github.com/erpgate/erpgate/caddymodules/quota"
	_ "github.com/erpgate/erpgate/caddymodules/usage" // erp_usage

	"testing"

	_ "github.com/erpgate/erpgate/caddymodules/erpapp" // the erp global option
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	site := func(body string) string { return ":8080 {\n\troute {\n" + body + "\n\t}\n}" }
	route := func(handlers string) string {
		return `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"handler":"subroute","routes":[{"handle":[` + handlers + `]}]}]}]}}}}}`
	}
	server := `"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"body":"x","handler":"static_response"}]}]}}}`
	global := func(erp string) string { return "{\n\terp {\n" + erp + "\n\t}\n}\n:8080 {\n\trespond \"x\"\n}\n" }
	adapttest.Run(t, []adapttest.Case{
		{Name: "plain", Caddyfile: site("\t\terp_quota"), JSON: route(`{"handler":"erp_quota"}`)},
		{
			Name: "everything",
			Caddyfile: site(`		erp_quota {
			plan free 60/m
			plan standard 6000/m 1000000
			plan premium {
				rate 30000/m
				client_rate 100/s
				quota 10000000
			}
			plan enterprise
			default_plan free
			key {http.auth.user.company_id}
			plan_from {http.auth.user.plan}
			client {http.auth.user.id}
			on_redis_down deny
			shadow
			timeout 50ms
			probe_interval 2s
			billing_day 15
			time_zone Europe/Berlin
		}`),
			JSON: route(`{"billing_day":15,"client":"{http.auth.user.id}","default_plan":"free","handler":"erp_quota","key":"{http.auth.user.company_id}","on_redis_down":"deny","plan_from":"{http.auth.user.plan}","plans":{"enterprise":{},"free":{"rate":"60/m"},"premium":{"client_rate":"100/s","quota":10000000,"rate":"30000/m"},"standard":{"quota":1000000,"rate":"6000/m"}},"probe_interval":2000000000,"shadow":true,"time_zone":"Europe/Berlin","timeout":50000000}`),
		},
		{Name: "argument", Caddyfile: site("\t\terp_quota free"), Err: "wrong argument count"},
		{Name: "unknown subdirective", Caddyfile: site("\t\terp_quota {\n\t\t\tzone api\n\t\t}"), Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: site("\t\terp_quota {\n\t\t\tshadow\n\t\t\tshadow\n\t\t}"), Err: "duplicate"},
		{Name: "duplicate plan", Caddyfile: site("\t\terp_quota {\n\t\t\tplan free 1/s\n\t\t\tplan free 2/s\n\t\t}"), Err: "duplicate plan"},
		{Name: "rate twice", Caddyfile: site("\t\terp_quota {\n\t\t\tplan free 1/s {\n\t\t\t\trate 2/s\n\t\t\t}\n\t\t}"), Err: "rate given twice"},
		{Name: "plan without name", Caddyfile: site("\t\terp_quota {\n\t\t\tplan\n\t\t}"), Err: "wrong argument count"},
		{Name: "bad policy", Caddyfile: site("\t\terp_quota {\n\t\t\ton_redis_down maybe\n\t\t}"), Err: "allow, deny or local"},
		{Name: "bad quota", Caddyfile: site("\t\terp_quota {\n\t\t\tplan free 1/s lots\n\t\t}"), Err: "not a number"},
		{Name: "bad billing day", Caddyfile: site("\t\terp_quota {\n\t\t\tbilling_day 0\n\t\t}"), Err: "1 to 31"},
		{Name: "shadow takes no argument", Caddyfile: site("\t\terp_quota {\n\t\t\tshadow on\n\t\t}"), Err: "wrong argument count"},
		{Name: "bad timeout", Caddyfile: site("\t\terp_quota {\n\t\t\ttimeout soon\n\t\t}"), Err: "invalid duration"},
		{Name: "usage", Caddyfile: site("\t\terp_usage"), JSON: route(`{"handler":"erp_usage"}`)},
		{Name: "usage company", Caddyfile: site("\t\terp_usage {\n\t\t\tcompany {http.request.header.X-Company}\n\t\t}"), JSON: route(`{"company":"{http.request.header.X-Company}","handler":"erp_usage"}`)},
		{Name: "usage argument", Caddyfile: site("\t\terp_usage now"), Err: "wrong argument count"},
		{Name: "usage unknown", Caddyfile: site("\t\terp_usage {\n\t\t\tplan free\n\t\t}"), Err: "unknown subdirective"},
		{
			Name:      "quota overrides in the erp app",
			Caddyfile: global("\t\tquota_override acme {\n\t\t\tplan premium\n\t\t\trate 12000/m\n\t\t\tclient_rate unlimited\n\t\t\tquota 0\n\t\t\tbilling_day 15\n\t\t\ttime_zone Europe/Berlin\n\t\t}\n\t\tquota_override globex {\n\t\t\trate 60/m\n\t\t}"),
			JSON:      `{"apps":{"erp":{"quota_overrides":{"acme":{"plan":"premium","rate":"12000/m","client_rate":"unlimited","quota":0,"billing_day":15,"time_zone":"Europe/Berlin"},"globex":{"rate":"60/m"}}},` + server + `}}`,
		},
		{Name: "duplicate override", Caddyfile: global("\t\tquota_override acme {\n\t\t\trate 1/s\n\t\t}\n\t\tquota_override acme {\n\t\t\trate 2/s\n\t\t}"), Err: "duplicate quota_override"},
		{Name: "override unknown", Caddyfile: global("\t\tquota_override acme {\n\t\t\tburst 5\n\t\t}"), Err: "unknown subdirective"},
		{Name: "override without company", Caddyfile: global("\t\tquota_override {\n\t\t\trate 1/s\n\t\t}"), Err: "wrong argument count"},
		{Name: "override bad quota", Caddyfile: global("\t\tquota_override acme {\n\t\t\tquota many\n\t\t}"), Err: "not a number"},
	})
}
