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
	raw := resp.Body
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	const docURL = "https://erpgate.test/openapi.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	paths := doc.(map[string]any)["paths"].(map[string]any)
	schemaFor := func(path, method string, status int) *jsonschema.Schema {
		t.Helper()
		esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
		responses := paths[path].(map[string]any)[method].(map[string]any)["responses"].(map[string]any)
		code := strconv.Itoa(status)
		ptr := "#/paths/" + esc(path) + "/" + method + "/responses/" + code
		r, ok := responses[code].(map[string]any)
		if !ok {
			r, ptr = responses["default"].(map[string]any), "#/paths/"+esc(path)+"/"+method+"/responses/default"
		}
		if ref, ok := r["$ref"].(string); ok {
			ptr = ref
		}
		s, err := c.Compile(docURL + ptr + "/content/application~1json/schema")
		if err != nil {
			t.Fatalf("%s %s %d: %v", method, path, status, err)
		}
		return s
	}
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
		if err := schemaFor(tc.docPath, tc.method, tc.status).Validate(inst); err != nil {
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
