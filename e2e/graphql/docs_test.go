package graphql

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestOpenAPIAndDocsPage: the served OpenAPI document describes
// /api/graphql (POST and GET, the request and answer schemas, the
// QUERY_TOO_COMPLEX code), the endpoint's real answers validate against
// it, and the docs page links the endpoint.
func TestOpenAPIAndDocsPage(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	u := login(t, in.URL)

	raw := httpt.Get(t, in.URL+"/api/v1/openapi.json", nil).Body
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	paths := doc.(map[string]any)["paths"].(map[string]any)
	item, ok := paths[endpoint].(map[string]any)
	if !ok || item["post"] == nil || item["get"] == nil {
		t.Fatalf("the document has no POST and GET %s: %v", endpoint, item)
	}
	post0 := item["post"].(map[string]any)
	if _, ok := post0["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"]; !ok {
		t.Fatalf("POST %s has no JSON request body", endpoint)
	}
	codes := doc.(map[string]any)["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)["enum"].([]any)
	if !slices.Contains(codes, any("QUERY_TOO_COMPLEX")) {
		t.Fatalf("QUERY_TOO_COMPLEX is not among the documented codes %v", codes)
	}

	const docURL = "https://erpgate.test/openapi.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	schemaFor := func(method string, status int) *jsonschema.Schema {
		t.Helper()
		responses := item[method].(map[string]any)["responses"].(map[string]any)
		code := strconv.Itoa(status)
		ptr := "#/paths/~1api~1graphql/" + method + "/responses/" + code
		r, ok := responses[code].(map[string]any)
		if !ok {
			r, ptr = responses["default"].(map[string]any), "#/paths/~1api~1graphql/"+method+"/responses/default"
		}
		if ref, ok := r["$ref"].(string); ok {
			ptr = ref
		}
		s, err := c.Compile(docURL + ptr + "/content/application~1json/schema")
		if err != nil {
			t.Fatalf("%s %d: %v", method, status, err)
		}
		return s
	}
	simple := `{ invoices(first: 2) { nodes { number customer { display_name } } } }`
	for _, tc := range []struct {
		what   string
		a      *answer
		status int
	}{
		{"a query", post(t, in.URL, u.aliceAcme, request{Query: simple}, nil), 200},
		{"a query with a field error", post(t, in.URL, u.aliceAcme, request{Query: `{ invoice(id: "inv_globex_0001") { id } }`}, nil), 200},
		{"a GET query", get(t, in.URL, u.aliceAcme, url.Values{"query": {simple}}, nil), 200},
		{"too deep for free", post(t, in.URL, u.bobGlobex, request{Query: tooDeep}, nil), 400},
		{"not parsing", post(t, in.URL, u.aliceAcme, request{Query: "{"}, nil), 400},
		{"no token", post(t, in.URL, "", request{Query: simple}, nil), 401},
		{"a GET mutation", get(t, in.URL, u.aliceAcme, url.Values{"query": {`mutation { deleteInvoice(id: "x") }`}}, nil), 405},
	} {
		if tc.a.Status != tc.status {
			t.Fatalf("%s: %s, want %d", tc.what, tc.a, tc.status)
		}
		method := strings.ToLower(tc.a.method)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(tc.a.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaFor(method, tc.status).Validate(inst); err != nil {
			t.Errorf("%s (%d) does not match the document: %v\n%s", tc.what, tc.status, err, tc.a.Raw)
		}
	}

	page := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/docs", nil, nil)
	if page.StatusCode != 200 || !strings.Contains(string(page.Body), `<a href="/api/graphql">`) {
		t.Fatalf("the docs page does not link the GraphQL endpoint: %d %.300s", page.StatusCode, page.Body)
	}
}
