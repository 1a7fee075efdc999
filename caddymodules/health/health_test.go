package health

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, []adapttest.Case{
		{
			Name:      "in a handle block",
			Caddyfile: ":8080 {\n\thandle /health/* {\n\t\terp_health\n\t}\n}",
			JSON:      `{"apps":{"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"match":[{"path":["/health/*"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"erp_health"}]}]}]}]}}}}}`,
		},
		{Name: "argument", Caddyfile: ":8080 {\n\terp_health now\n}", Err: "wrong argument count"},
		{Name: "block", Caddyfile: ":8080 {\n\terp_health {\n\t\tdeep\n\t}\n}", Err: "unknown subdirective"},
	})
}
