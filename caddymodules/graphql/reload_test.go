package graphql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/erpgate/erpgate/contract"
)

func init() {
	caddy.RegisterModule(testIdentity{})
}

// testIdentity stands in for erp_auth in TestReloadThroughTheAdminAPI: it
// leaves a verified identity as erp_auth's providers do.
type testIdentity struct{}

func (testIdentity) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.erp_graphql_test_identity", New: func() caddy.Module { return new(testIdentity) }}
}

func (testIdentity) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", "usr_1")
	repl.Set("http.auth.user.company_id", "acme")
	repl.Set("http.auth.user.plan", "standard")
	caddyhttp.SetVar(r.Context(), contract.VarScope, "invoices:read suppliers:read")
	return next.ServeHTTP(w, r)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReloadThroughTheAdminAPI: a backend added through Caddy's admin API
// with a graphql.sdl reloads the config, and erp_graphql serves the new
// schema without a restart; an SDL that does not compose is refused and the
// running schema stays.
func TestReloadThroughTheAdminAPI(t *testing.T) {
	b := &backend{}
	b.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Total-Count", "1")
		fmt.Fprint(w, `[{"id":"sup_1","name":"Acme Supplies"}]`)
	})
	srv := httptest.NewServer(b)
	defer srv.Close()
	admin, edge := freePort(t), freePort(t)
	sdl, _ := json.Marshal(invoicesSDL + "\n" + customersSDL)
	cfg := `{
		"admin": {"listen": "` + admin + `"},
		"storage": {"module": "file_system", "root": ` + jsonString(t.TempDir()) + `},
		"apps": {
			"erp": {"backends": {
				"invoices": {"graphql": {"sdl": ` + string(sdl) + `}, "versions": {"v1": {"upstreams": ["` + srv.URL + `/v1"]}}}
			}},
			"http": {"servers": {"edge": {"listen": ["` + edge + `"], "routes": [{"handle": [
				{"handler": "erp_graphql_test_identity"}, {"handler": "erp_graphql"}
			]}]}}}
		}
	}`
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()

	query := func() string {
		t.Helper()
		resp, err := http.Post("http://"+edge+"/api/graphql", "application/json",
			strings.NewReader(`{"query":"{ __type(name: \"Supplier\") { name } }"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var d answerDoc
		if err := json.Unmarshal(body, &d); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return string(d.Data)
	}
	if got := query(); got != `{"__type":null}` {
		t.Fatalf("before: %s", got)
	}
	add := func(name, backend string) (int, string) {
		resp, err := http.Post("http://"+admin+"/config/apps/erp/backends/"+name, "application/json", bytes.NewReader([]byte(backend)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	supplierSDL, _ := json.Marshal("type Supplier { id: ID!, name: String }\nextend type Query { suppliers(first: Int = 20): SupplierConnection }")
	if code, body := add("suppliers", `{"graphql": {"sdl": `+string(supplierSDL)+`}, "versions": {"v1": {"upstreams": ["`+srv.URL+`/v1"]}}}`); code != 200 {
		t.Fatalf("adding a backend: %d %s", code, body)
	}
	if got := query(); got != `{"__type":{"name":"Supplier"}}` {
		t.Fatalf("after the reload: %s", got)
	}
	resp, err := http.Post("http://"+edge+"/api/graphql", "application/json", strings.NewReader(`{"query":"{ suppliers { nodes { name } } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `{"suppliers":{"nodes":[{"name":"Acme Supplies"}]}}`) {
		t.Fatalf("the new backend's data: %s", body)
	}
	if code, body := add("broken", `{"graphql": {"sdl": "type Broken { id: ID! "}, "versions": {"v1": {"upstreams": ["`+srv.URL+`/v1"]}}}`); code == 200 || !strings.Contains(body, "do not compose") {
		t.Fatalf("a broken SDL: %d %s", code, body)
	}
	if got := query(); got != `{"__type":{"name":"Supplier"}}` {
		t.Fatalf("after the refused change: %s", got)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
