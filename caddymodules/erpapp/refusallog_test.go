package erpapp

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// Golden files: a Caddyfile, a `----------` line, the JSON it adapts to.
func TestRefusalLogCaddyfile(t *testing.T) {
	cases := adapttest.Files(t, "testdata/refusal_log*.caddyfiletest")
	site := "\n:8080 {\n\trespond \"x\"\n}\n"
	wrap := func(block string) string { return "{\n\terp {\n\t\trefusal_log {\n" + block + "\t\t}\n\t}\n}" + site }
	cases = append(cases,
		adapttest.Case{Name: "unknown subdirective", Caddyfile: wrap("\t\t\tbuffer 3\n"), Err: "unknown subdirective"},
		adapttest.Case{Name: "zero sample", Caddyfile: wrap("\t\t\tsample 0\n"), Err: "positive number"},
		adapttest.Case{Name: "bad interval", Caddyfile: wrap("\t\t\tinterval -1s\n"), Err: "positive duration"},
		adapttest.Case{Name: "bad access_log", Caddyfile: wrap("\t\t\taccess_log none\n"), Err: "sampled or all"},
		adapttest.Case{Name: "duplicate", Caddyfile: wrap("\t\t\tinterval 1s\n\t\t\tinterval 2s\n"), Err: "duplicate"},
		adapttest.Case{Name: "extra argument", Caddyfile: wrap("\t\t\tsample 1 2\n"), Err: "wrong argument count"},
		adapttest.Case{Name: "missing argument", Caddyfile: wrap("\t\t\taccess_log\n"), Err: "wrong argument count"},
		adapttest.Case{Name: "argument", Caddyfile: "{\n\terp {\n\t\trefusal_log 5\n\t}\n}" + site, Err: "wrong argument count"},
		adapttest.Case{Name: "twice", Caddyfile: "{\n\terp {\n\t\trefusal_log {\n\t\t}\n\t\trefusal_log {\n\t\t}\n\t}\n}" + site, Err: "duplicate"},
	)
	adapttest.Run(t, cases)
}
