package account

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestEdgeAnswersMatchTheDocument: the answers the edge itself produces —
// usage, backend data through the envelope, and its refusals — validate
// against the schemas of the served OpenAPI document.
func TestEdgeAnswersMatchTheDocument(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	resp := httpt.Get(t, in.URL+"/api/v1/openapi.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d %.300s", resp.StatusCode, resp.Body)
	}
	d := parseDoc(t, resp.Body)
	tok := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	cases := []struct {
		docPath, method, url string
		header               map[string]string
		status               int
	}{
		{"/api/v1/usage", "get", "/api/v1/usage", tok, 200},
		{"/api/v1/usage", "get", "/api/v1/usage", nil, 401},
		{"/api/{version}/{backend}", "get", "/api/v2/invoices?limit=2", tok, 200},
		{"/api/{version}/{backend}", "get", "/api/v9/invoices", tok, 400},
		{"/api/{version}/{backend}", "get", "/api/v2/invoices?company_id=globex", tok, 403},
		{"/api/{version}/{backend}", "get", "/api/v2/invoices", nil, 401},
	}
	for _, tc := range cases {
		resp := httpt.Do(t, http.MethodGet, in.URL+tc.url, nil, tc.header)
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d %s, want %d", tc.url, resp.StatusCode, resp.Body, tc.status)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(resp.Body))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.schema(t, tc.docPath, tc.method, tc.status).Validate(inst); err != nil {
			t.Errorf("GET %s (%d) does not match the document: %v\n%s", tc.url, tc.status, err, resp.Body)
		}
	}
	var usage struct {
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(httpt.Get(t, in.URL+"/api/v1/usage", tok).Body, &usage)
	if usage.Data["company_id"] != "acme" || usage.Data["rate"] == nil {
		t.Fatalf("usage answer %v", usage.Data)
	}
}

// servedDoc is the OpenAPI document the edge serves, compiled.
type servedDoc struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

const servedDocURL = "https://erpgate.test/openapi.json"

func parseDoc(t testing.TB, raw []byte) *servedDoc {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(servedDocURL, doc); err != nil {
		t.Fatal(err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatal("the document is not an object")
	}
	return &servedDoc{doc: m, c: c}
}

// response is the documented response of an operation for status (or its
// default) with its JSON pointer, a reference to a component followed.
func (d *servedDoc) response(t testing.TB, path, method string, status int) (map[string]any, string) {
	t.Helper()
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	item, _ := d.doc["paths"].(map[string]any)[path].(map[string]any)
	op, ok := item[method].(map[string]any)
	if !ok {
		t.Fatalf("%s %s is not documented", method, path)
	}
	responses := op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	ptr := "#/paths/" + esc(path) + "/" + method + "/responses/" + code
	r, ok := responses[code].(map[string]any)
	if !ok {
		r, ptr = responses["default"].(map[string]any), "#/paths/"+esc(path)+"/"+method+"/responses/default"
	}
	if ref, ok := r["$ref"].(string); ok {
		ptr = ref
		name := ref[strings.LastIndex(ref, "/")+1:]
		r = d.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	return r, ptr
}

// schema compiles the JSON schema of a documented answer.
func (d *servedDoc) schema(t testing.TB, path, method string, status int) *jsonschema.Schema {
	t.Helper()
	_, ptr := d.response(t, path, method, status)
	s, err := d.c.Compile(servedDocURL + ptr + "/content/application~1json/schema")
	if err != nil {
		t.Fatalf("%s %s %d: %v", method, path, status, err)
	}
	return s
}
