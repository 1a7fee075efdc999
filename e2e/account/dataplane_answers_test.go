package account

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestDataPlaneAnswersMatchTheDocument: the data plane's answers on
// Caddyfile.example — conditional requests, the merge, Idempotency-Key,
// cursor errors, export and import — have a documented status, carry the
// headers the document names, and their bodies validate against its schemas.
func TestDataPlaneAnswersMatchTheDocument(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	d := parseDoc(t, httpt.Get(t, in.URL+"/api/v1/openapi.json", nil).Body)
	tok := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	with := func(kv ...string) map[string]string {
		h := map[string]string{"Authorization": tok["Authorization"]}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	const coll, item = "/api/{version}/{backend}", "/api/{version}/{backend}/{resource_path}"
	// check sends a request and holds its answer to the document: a
	// documented status (not the default), each named header sent and
	// documented, and a JSON body that fits the schema.
	check := func(docPath, method, url string, body []byte, header map[string]string, status int, headers ...string) *httpt.Response {
		t.Helper()
		resp := httpt.Do(t, method, in.URL+url, body, header)
		if resp.StatusCode != status {
			t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, resp.Body, status)
		}
		r, ptr := d.response(t, docPath, strings.ToLower(method), status)
		if strings.HasSuffix(ptr, "/default") {
			t.Errorf("%s %s: %d is not documented", method, docPath, status)
		}
		documented, _ := r["headers"].(map[string]any)
		for _, h := range headers {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s %s (%d): no %s header", method, url, status, h)
			}
			if documented[h] == nil {
				t.Errorf("%s %s (%d): %s is not documented", method, docPath, status, h)
			}
		}
		if len(resp.Body) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return resp
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(resp.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.schema(t, docPath, strings.ToLower(method), status).Validate(inst); err != nil {
			t.Errorf("%s %s (%d) does not match the document: %v\n%s", method, url, status, err, resp.Body)
		}
		return resp
	}
	ct := "Content-Type"

	// conditional requests and the merge
	get := check(item, "GET", "/api/v1/customers/cus_acme_001", nil, with(), 200, "ETag")
	tag := get.Header.Get("ETag")
	check(item, "GET", "/api/v1/customers/cus_acme_001", nil, with("If-None-Match", tag), 304, "ETag")
	check(item, "PATCH", "/api/v1/customers/cus_acme_001", []byte(`{"name":"Documented Co"}`), with(ct, "application/json", "If-Match", tag), 200, "ETag")
	check(item, "PATCH", "/api/v1/customers/cus_acme_001", []byte(`{"email":"billing@acme.example"}`),
		with(ct, "application/json", "If-Match", tag, "Prefer", "merge=auto"), 200, "Preference-Applied")
	check(item, "PATCH", "/api/v1/customers/cus_acme_001", []byte(`{"name":"Mine"}`),
		with(ct, "application/json", "If-Match", tag, "Prefer", "merge=auto"), 409, "ETag")
	check(item, "PATCH", "/api/v1/customers/cus_acme_001", []byte(`{"name":"Mine"}`),
		with(ct, "application/json", "If-Match", `"never-served"`, "Prefer", "merge=auto"), 412)

	// Idempotency-Key
	create := []byte(`{"name":"Idem Co","email":"idem@example.test"}`)
	check(coll, "POST", "/api/v1/customers", create, with(ct, "application/json", "Idempotency-Key", "doc-1"), 201)
	check(coll, "POST", "/api/v1/customers", create, with(ct, "application/json", "Idempotency-Key", "doc-1"), 201, "Idempotent-Replayed")
	check(coll, "POST", "/api/v1/customers", []byte(`{"name":"Other"}`), with(ct, "application/json", "Idempotency-Key", "doc-1"), 422)

	// cursor, export, import
	check(coll, "GET", "/api/v1/customers?limit=1&cursor=tampered", nil, with(), 400)
	exp := check("/api/{version}/{backend}/export", "GET", "/api/v1/customers/export?format=ndjson", nil, with(), 200, "Content-Disposition")
	if got := exp.Header.Get(ct); !strings.HasPrefix(got, "application/x-ndjson") || !bytes.Contains(exp.Body, []byte("\n")) {
		t.Errorf("export: %s %.200s", got, exp.Body)
	}
	check("/api/{version}/{backend}/export", "GET", "/api/v1/customers/export?cursor=x", nil, with(), 400)
	imp := "/api/{version}/{backend}/import"
	check(imp, "POST", "/api/v1/customers/import", []byte("{\"name\":\"Imp\",\"email\":\"imp@example.test\"}\nnot json\n"), with(ct, "application/x-ndjson"), 200)
	check(imp, "POST", "/api/v1/customers/import?dry_run=true", []byte("name,email\r\nAnn,ann@example.test\r\n"), with(ct, "text/csv"), 200)
	check(imp, "POST", "/api/v1/customers/import", []byte("{}"), with(ct, "application/json"), 415)

	// cookie mode: the session in cookies, the CSRF check at the edge
	login := httpt.Do(t, "POST", in.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": demoauth.Password}), nil)
	var lt struct {
		LoginToken string `json:"login_token"`
	}
	if err := json.Unmarshal(login.Envelope(t).Data, &lt); err != nil || lt.LoginToken == "" {
		t.Fatalf("login: %d %s", login.StatusCode, login.Body)
	}
	sel := check("/api/v1/auth/select-company", "POST", "/api/v1/auth/select-company",
		httpt.JSON(t, map[string]any{"login_token": lt.LoginToken, "company_id": "acme", "cookie": true}), map[string]string{ct: "application/json"}, 200, "Set-Cookie")
	jar := map[string]string{}
	for _, c := range sel.Cookies() {
		jar[c.Name] = c.Value
	}
	if jar["__Host-erp_at"] == "" || jar["__Host-erp_rt"] == "" || jar["__Host-erp_csrf"] == "" {
		t.Fatalf("cookie mode set %v", sel.Header.Values("Set-Cookie"))
	}
	cookies := map[string]string{ct: "application/json", "Origin": in.URL,
		"Cookie": "__Host-erp_at=" + jar["__Host-erp_at"] + "; __Host-erp_csrf=" + jar["__Host-erp_csrf"]}
	check(coll, "POST", "/api/v1/customers", []byte(`{"name":"Cookie Co","email":"cookie@example.test"}`), cookies, 403)
	cookies["X-CSRF-Token"] = jar["__Host-erp_csrf"]
	check(coll, "POST", "/api/v1/customers", []byte(`{"name":"Cookie Co","email":"cookie@example.test"}`), cookies, 201)
}
