package erpapp

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/erpgate/erpgate/caddymodules/dialects/jsonrpc"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/odata"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/rest"
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestBackendAdapt(t *testing.T) {
	site := "\n:8080 {\n\trespond \"x\"\n}\n"
	server := `"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"body":"x","handler":"static_response"}]}]}}}`
	erp := func(body string) string { return "{\n\terp {\n" + body + "\n\t}\n}" + site }
	adapttest.Run(t, []adapttest.Case{
		{
			Name: "three dialects",
			Caddyfile: erp(`		backend invoices {
			dialect rest {
				filter_fields status customer_id
			}
			default v2
			version v1 http://127.0.0.1:9001/v1 http://127.0.0.1:9002/v1 {
				deprecated 2026-01-01
				sunset 2027-06-30
				successor v2
			}
			version v2 http://127.0.0.1:9001/v2
		}
		backend ledger {
			dialect odata
			path /LedgerEntries
			version v1 http://127.0.0.1:9001/odata/v1
		}
		backend catalog {
			dialect jsonrpc {
				model product.product
				fields name price
			}
			version v1 http://127.0.0.1:9001/jsonrpc
		}`),
			JSON: `{"apps":{"erp":{"backends":{
				"catalog":{"dialect":{"fields":["name","price"],"model":"product.product","name":"jsonrpc"},"versions":{"v1":{"upstreams":["http://127.0.0.1:9001/jsonrpc"]}}},
				"invoices":{"dialect":{"filter_fields":["status","customer_id"],"name":"rest"},"default_version":"v2","versions":{
					"v1":{"upstreams":["http://127.0.0.1:9001/v1","http://127.0.0.1:9002/v1"],"deprecated":"2026-01-01","sunset":"2027-06-30","successor":"v2"},
					"v2":{"upstreams":["http://127.0.0.1:9001/v2"]}}},
				"ledger":{"dialect":{"name":"odata"},"path":"/LedgerEntries","versions":{"v1":{"upstreams":["http://127.0.0.1:9001/odata/v1"]}}}}},` + server + `}}`,
		},
		{
			Name:      "minimal backend is REST by default",
			Caddyfile: erp("\t\tbackend customers {\n\t\t\tversion v1 http://{$DEMO:127.0.0.1:9001}/v1\n\t\t}"),
			JSON:      `{"apps":{"erp":{"backends":{"customers":{"versions":{"v1":{"upstreams":["http://127.0.0.1:9001/v1"]}}}}},` + server + `}}`,
		},
		{Name: "no name", Caddyfile: erp("\t\tbackend {\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "two names", Caddyfile: erp("\t\tbackend a b {\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "duplicate backend", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1\n\t\t}\n\t\tbackend a {\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "duplicate backend"},
		{Name: "no version", Caddyfile: erp("\t\tbackend a {\n\t\t\tpath /x\n\t\t}"), Err: "at least one version"},
		{Name: "version without URL", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1\n\t\t}"), Err: "at least one upstream"},
		{Name: "version without name", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion\n\t\t}"), Err: "wrong argument count"},
		{Name: "duplicate version", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1\n\t\t\tversion v1 http://a/v2\n\t\t}"), Err: "duplicate version"},
		{Name: "unknown subdirective", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1\n\t\t\ttimeout 3s\n\t\t}"), Err: "unknown subdirective"},
		{Name: "duplicate path", Caddyfile: erp("\t\tbackend a {\n\t\t\tpath /a\n\t\t\tpath /b\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "duplicate subdirective"},
		{Name: "path two args", Caddyfile: erp("\t\tbackend a {\n\t\t\tpath /a /b\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "default no arg", Caddyfile: erp("\t\tbackend a {\n\t\t\tdefault\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "unknown dialect", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect soap\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "erp.dialects.soap"},
		{Name: "dialect no arg", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "duplicate dialect", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect rest\n\t\t\tdialect odata\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "duplicate subdirective"},
		{Name: "odata takes no options", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect odata {\n\t\t\t\tcount off\n\t\t\t}\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "no options"},
		{Name: "odata extra arg", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect odata v4\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "rest unknown option", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect rest {\n\t\t\t\tfilters a\n\t\t\t}\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "unknown subdirective"},
		{Name: "rest filter_fields empty", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect rest {\n\t\t\t\tfilter_fields\n\t\t\t}\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "jsonrpc duplicate model", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect jsonrpc {\n\t\t\t\tmodel a\n\t\t\t\tmodel b\n\t\t\t}\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "duplicate subdirective"},
		{Name: "jsonrpc model two args", Caddyfile: erp("\t\tbackend a {\n\t\t\tdialect jsonrpc {\n\t\t\t\tmodel a b\n\t\t\t}\n\t\t\tversion v1 http://a/v1\n\t\t}"), Err: "wrong argument count"},
		{Name: "version unknown subdirective", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1 {\n\t\t\t\tretired 2020-01-01\n\t\t\t}\n\t\t}"), Err: "unknown subdirective"},
		{Name: "version duplicate sunset", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1 {\n\t\t\t\tsunset 2027-01-01\n\t\t\t\tsunset 2028-01-01\n\t\t\t}\n\t\t}"), Err: "duplicate subdirective"},
		{Name: "deprecated needs its date", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1 {\n\t\t\t\tdeprecated\n\t\t\t}\n\t\t}"), Err: "wrong argument count"},
		{Name: "sunset extra arg", Caddyfile: erp("\t\tbackend a {\n\t\t\tversion v1 http://a/v1 {\n\t\t\t\tsunset 2027-01-01 soon\n\t\t\t}\n\t\t}"), Err: "wrong argument count"},
	})
}

func TestBackendProvisionRefusals(t *testing.T) {
	t.Parallel()
	v := func(urls ...string) map[string]*Version { return map[string]*Version{"v1": {Upstreams: urls}} }
	for name, c := range map[string]struct {
		name string
		b    *Backend
	}{
		"reserved name":      {"auth", &Backend{Versions: v("http://a/v1")}},
		"version-like name":  {"v2", &Backend{Versions: v("http://a/v1")}},
		"upper case name":    {"Invoices", &Backend{Versions: v("http://a/v1")}},
		"bad version name":   {"a", &Backend{Versions: map[string]*Version{"1": {Upstreams: []string{"http://a/v1"}}}}},
		"ftp":                {"a", &Backend{Versions: v("ftp://a/v1")}},
		"query in URL":       {"a", &Backend{Versions: v("http://a/v1?x=1")}},
		"user in URL":        {"a", &Backend{Versions: v("http://u:p@a/v1")}},
		"dot segment":        {"a", &Backend{Versions: v("http://a/v1/../v2")}},
		"mixed paths":        {"a", &Backend{Versions: v("http://a/v1", "http://b/v2")}},
		"no upstreams":       {"a", &Backend{Versions: v()}},
		"bad date":           {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Sunset: "next year"}}}},
		"sunset before dep":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Deprecated: "2027-01-01", Sunset: "2026-01-01"}}}},
		"unknown successor":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Successor: "v3"}}}},
		"hostile successor":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Successor: "javascript:x"}}}},
		"unknown default":    {"a", &Backend{DefaultVersion: "v9", Versions: v("http://a/v1")}},
		"non-canonical path": {"a", &Backend{Path: "/a//b", Versions: v("http://a/v1")}},
		"no versions":        {"a", &Backend{}},
	} {
		app := &App{Backends: map[string]*Backend{c.name: c.b}}
		if err := app.provisionBackends(caddyContext(t)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBackendProvision(t *testing.T) {
	t.Parallel()
	app := &App{Backends: map[string]*Backend{"invoices": {Versions: map[string]*Version{
		"v1":   {Upstreams: []string{"http://127.0.0.1:9001/v1/", "https://erp.example/v1"}[:1], Deprecated: "2026-01-01", Sunset: "2027-06-30T12:00:00+02:00"},
		"v2":   {Upstreams: []string{"http://127.0.0.1:9001/v2", "http://127.0.0.2/v2"}},
		"v10":  {Upstreams: []string{"http://127.0.0.1:9001/v10"}, Deprecated: "2026-05-01"},
		"v2.1": {Upstreams: []string{"http://127.0.0.1:9001/v2"}},
	}}}}
	if err := app.provisionBackends(caddyContext(t)); err != nil {
		t.Fatal(err)
	}
	b := app.Backend("invoices")
	var order []string
	for _, v := range b.Ordered() {
		order = append(order, v.Name())
	}
	if got := len(order); got != 4 || order[0] != "v1" || order[1] != "v2" || order[2] != "v2.1" || order[3] != "v10" {
		t.Fatalf("order %v", order)
	}
	if b.Default().Name() != "v2.1" || b.Resource() != "/invoices" {
		t.Fatalf("default %s resource %s", b.Default().Name(), b.Resource())
	}
	v1 := b.Version("v1")
	if v1.SuccessorRef() != "v2" || v1.BasePath() != "/v1" || v1.Dials()[0] != "127.0.0.1:9001" || v1.SunsetAt().Hour() != 10 {
		t.Fatalf("v1 %+v", v1)
	}
	if d := b.Version("v2").Dials(); len(d) != 2 || d[1] != "127.0.0.2:80" {
		t.Fatalf("dials %v", d)
	}
	if b.Version("v10").SuccessorRef() != "" {
		t.Fatalf("v10 successor %q", b.Version("v10").SuccessorRef())
	}
}

func caddyContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}
