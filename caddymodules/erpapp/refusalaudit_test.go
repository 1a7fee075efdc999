package erpapp

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// Golden files: a Caddyfile, a `----------` line, the JSON it adapts to.
func TestRefusalAuditCaddyfile(t *testing.T) {
	cases := adapttest.Files(t, "testdata/refusal_audit*.caddyfiletest")
	site := "\n:8080 {\n\trespond \"x\"\n}\n"
	wrap := func(block string) string { return "{\n\terp {\n\t\trefusal_audit {\n" + block + "\t\t}\n\t}\n}" + site }
	cases = append(cases,
		adapttest.Case{Name: "unknown subdirective", Caddyfile: wrap("\t\t\tburst 3\n"), Err: "unknown subdirective"},
		adapttest.Case{Name: "zero sample", Caddyfile: wrap("\t\t\tsample 0\n"), Err: "positive number"},
		adapttest.Case{Name: "bad interval", Caddyfile: wrap("\t\t\tinterval soon\n"), Err: "positive duration"},
		adapttest.Case{Name: "duplicate", Caddyfile: wrap("\t\t\tsample 1\n\t\t\tsample 2\n"), Err: "duplicate"},
		adapttest.Case{Name: "extra argument", Caddyfile: wrap("\t\t\tbuffer 1 2\n"), Err: "wrong argument count"},
		adapttest.Case{Name: "argument", Caddyfile: "{\n\terp {\n\t\trefusal_audit 5\n\t}\n}" + site, Err: "wrong argument count"},
	)
	adapttest.Run(t, cases)
}
