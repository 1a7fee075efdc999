package graphql

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// withoutLedger is Caddyfile.example without its ledger backend, and the
// ledger's SDL as the example declares it.
func withoutLedger(t *testing.T) (cfg, sdl string) {
	t.Helper()
	cfg = stacktest.ExampleConfig(t)
	start := strings.Index(cfg, "\t\t# an OData v4 general ledger\n")
	end := strings.Index(cfg, "\t\t# a JSON-RPC 2.0 product catalogue")
	if start < 0 || end < start {
		t.Fatal("Caddyfile.example's ledger backend not found")
	}
	block := cfg[start:end]
	i := strings.Index(block, "sdl <<SDL\n")
	j := strings.LastIndex(block, "SDL\n")
	if i < 0 || j < i {
		t.Fatal("the ledger backend has no SDL heredoc")
	}
	sdl = block[i+len("sdl <<SDL\n") : j]
	var lines []string
	for _, l := range strings.Split(sdl, "\n") {
		lines = append(lines, strings.TrimLeft(l, "\t"))
	}
	return cfg[:start] + cfg[end:], strings.TrimSpace(strings.Join(lines, "\n"))
}

// TestBackendAddedAtRunTime is the "backend added at run time" of issue 16:
// the gateway starts without the ledger; the ledger is registered through
// Caddy's admin API with its SDL and appears in introspection and answers
// its root fields, with no restart; a registration whose SDL does not parse
// is refused and changes nothing; the ledger unreachable fails its field
// only; removing the ledger drops its types.
func TestBackendAddedAtRunTime(t *testing.T) {
	t.Parallel()
	cfg, sdl := withoutLedger(t)
	in := stacktest.Start(t, stacktest.Options{Config: cfg})
	tok := login(t, in.URL).aliceAcme

	admin := func(method, path string, body []byte) *httpt.Response {
		t.Helper()
		return httpt.Do(t, method, in.AdminURL+path, body, map[string]string{"Content-Type": "application/json"})
	}
	const introspect = `{
	  __type(name: "LedgerEntry") { name kind fields { name } }
	  __schema { queryType { fields { name } } }
	}`
	rootFields := func(d map[string]any) map[string]bool {
		out := map[string]bool{}
		for _, f := range list(t, d, "__schema", "queryType", "fields") {
			out[f.(map[string]any)["name"].(string)] = true
		}
		return out
	}
	absent := func(when string) {
		t.Helper()
		d := query(t, in.URL, tok, introspect, nil)
		if d["__type"] != nil || rootFields(d)["ledgerEntries"] || !rootFields(d)["invoices"] {
			t.Fatalf("%s: introspection shows %v", when, d)
		}
		a := post(t, in.URL, tok, request{Query: `{ ledgerEntries(first: 1) { nodes { id } } }`}, nil)
		if a.Status != 400 || a.code() != "BAD_REQUEST" || len(a.Errors[0].Locations) == 0 {
			t.Fatalf("%s: a query for ledgerEntries: %s", when, a)
		}
	}
	absent("before the registration")

	backend := map[string]any{
		"dialect":  map[string]any{"name": "odata"},
		"path":     "/LedgerEntries",
		"versions": map[string]any{"v1": map[string]any{"upstreams": []string{in.DemoURL + "/odata/v1"}}},
		"graphql":  map[string]any{"sdl": sdl},
	}
	body, _ := json.Marshal(backend)
	if r := admin(http.MethodPost, "/config/apps/erp/backends/ledger", body); r.StatusCode != 200 {
		t.Fatalf("registering the ledger: %d %s", r.StatusCode, r.Body)
	}
	present := func(when string) {
		t.Helper()
		d := query(t, in.URL, tok, introspect, nil)
		typ := obj(t, d, "__type")
		var fields []string
		for _, f := range list(t, typ, "fields") {
			fields = append(fields, f.(map[string]any)["name"].(string))
		}
		if typ["name"] != "LedgerEntry" || typ["kind"] != "OBJECT" || !strings.Contains(strings.Join(fields, " "), "entry_no") ||
			!rootFields(d)["ledgerEntries"] || !rootFields(d)["ledgerEntry"] || !rootFields(d)["invoices"] {
			t.Fatalf("%s: introspection shows %v", when, d)
		}
		d = query(t, in.URL, tok, `{
		  ledgerEntries(first: 2, sort: "entry_no") { totalCount nodes { id entry_no amount status } }
		  invoice(id: "inv_acme_0001") { number }
		}`, nil)
		got := list(t, d, "ledgerEntries", "nodes")
		want := rest(t, in.URL, tok, "/api/v1/ledger?limit=2&sort=entry_no").([]any)
		if len(got) != 2 || len(want) != 2 || at(t, d, "ledgerEntries", "totalCount") != float64(64) || at(t, d, "invoice", "number") != "ACME-0001" {
			t.Fatalf("%s: %v (REST %v)", when, d, want)
		}
		for i := range got {
			sameFields(t, when, got[i].(map[string]any), want[i].(map[string]any), "id", "entry_no", "amount", "status")
		}
	}
	present("after the registration")

	// an SDL that does not parse: the admin API refuses the config, the
	// running one (with the ledger) keeps serving
	broken := map[string]any{
		"versions": map[string]any{"v1": map[string]any{"upstreams": []string{in.DemoURL + "/odata/v1"}}},
		"dialect":  map[string]any{"name": "odata"},
		"path":     "/LedgerEntries",
		"graphql":  map[string]any{"sdl": "type Broken { id: ID! "},
	}
	body, _ = json.Marshal(broken)
	if r := admin(http.MethodPost, "/config/apps/erp/backends/broken", body); r.StatusCode == 200 {
		t.Fatalf("a backend with a broken SDL was accepted: %s", r.Body)
	}
	present("after a refused registration")
	if r := httpt.Get(t, in.URL+"/api/v1/broken", map[string]string{"Authorization": "Bearer " + tok}); r.StatusCode != 404 {
		t.Fatalf("the refused backend serves REST: %d", r.StatusCode)
	}

	// the ledger's upstream unreachable: its field is null with
	// UPSTREAM_UNAVAILABLE, the rest of the answer is there (200)
	dead := "http://127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)) + "/odata/v1"
	if r := admin(http.MethodPatch, "/config/apps/erp/backends/ledger/versions/v1/upstreams", []byte(`["`+dead+`"]`)); r.StatusCode != 200 {
		t.Fatalf("changing the ledger's upstream: %d %s", r.StatusCode, r.Body)
	}
	a := post(t, in.URL, tok, request{Query: `{ ledgerEntries(first: 2) { nodes { id } } invoice(id: "inv_acme_0001") { number } }`}, nil)
	if a.Status != 200 || len(a.Errors) != 1 || a.code() != "UPSTREAM_UNAVAILABLE" || fmt.Sprint(a.Errors[0].Path) != "[ledgerEntries]" {
		t.Fatalf("the ledger down: %s", a)
	}
	if d := a.data(t); d["ledgerEntries"] != nil || at(t, d, "invoice", "number") != "ACME-0001" {
		t.Fatalf("the ledger down: data %v", d)
	}

	if r := admin(http.MethodDelete, "/config/apps/erp/backends/ledger", nil); r.StatusCode != 200 {
		t.Fatalf("removing the ledger: %d %s", r.StatusCode, r.Body)
	}
	absent("after the removal")
}
