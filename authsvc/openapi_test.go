package authsvc_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/openapi"
	"github.com/erpgate/erpgate/contract"
)

const docURL = "https://erpgate.invalid/api/v1/openapi.json"

func loadDoc(t testing.TB) map[string]any {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openapi.Document))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatal("openapi.json is not an object")
	}
	return m
}

// The document validates against the official OpenAPI 3.1 schema, and
// every schema in it is a valid JSON Schema 2020-12 whose references resolve.
func TestOpenAPIValidates(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/oas-3.1-schema-2022-10-07.json")
	if err != nil {
		t.Fatal(err)
	}
	oas, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const oasURL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
	if err := c.AddResource(oasURL, oas); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(oasURL)
	if err != nil {
		t.Fatal(err)
	}
	doc := loadDoc(t)
	if err := sch.Validate(any(doc)); err != nil {
		t.Fatalf("not a valid OpenAPI 3.1 document: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	// A broken document is refused (the check can fail).
	broken := map[string]any{"openapi": "3.1.0", "info": map[string]any{"title": "x"}, "paths": map[string]any{}}
	if sch.Validate(any(broken)) == nil {
		t.Fatal("a document without info.version validated")
	}

	dc := docCompiler(t)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	names := make([]string, 0, len(schemas))
	for n := range schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := dc.Compile(docURL + "#/components/schemas/" + n); err != nil {
			t.Errorf("schema %s: %v", n, err)
		}
	}
}

func docCompiler(t testing.TB) *jsonschema.Compiler {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, any(loadDoc(t))); err != nil {
		t.Fatal(err)
	}
	return c
}

// edgePaths are documented operations served by the edge, not by the auth
// service's router: the usage, webhook and event stream handlers and the
// generic backend route with its export and import.
var edgePaths = map[string][]string{
	"/api/v1/usage":                                     {"GET"},
	"/api/v1/events/stream":                             {"GET"},
	"/api/v1/events/ws":                                 {"GET"},
	"/api/v1/webhooks":                                  {"GET", "POST"},
	"/api/v1/webhooks/{id}":                             {"DELETE", "GET", "PATCH"},
	"/api/v1/webhooks/{id}/rotate-secret":               {"POST"},
	"/api/v1/webhooks/{id}/test":                        {"POST"},
	"/api/v1/webhooks/{id}/deliveries":                  {"GET"},
	"/api/v1/webhooks/{id}/deliveries/{delivery}/retry": {"POST"},
	"/api/{version}/{backend}":                          {"GET", "POST"},
	"/api/{version}/{backend}/{resource_path}":          {"DELETE", "GET", "PATCH", "POST", "PUT"},
	"/api/{version}/{backend}/export":                   {"GET"},
	"/api/{version}/{backend}/import":                   {"POST"},
	"/api/graphql":                                      {"GET", "POST"},
	"/api/v1/batch":                                     {"POST"},
	"/api/v1/exports":                                   {"POST"},
	"/api/v1/exports/{id}":                              {"DELETE", "GET"},
	"/api/v1/exports/{id}/download":                     {"GET"},
}

// The document and the router table describe the same operations.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	documented := map[string][]string{}
	for p, item := range doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			if slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}, m) {
				documented[p] = append(documented[p], strings.ToUpper(m))
			}
		}
		sort.Strings(documented[p])
	}
	routed := authsvc.Routes()
	for p, ms := range routed {
		if got := documented[p]; !slices.Equal(got, ms) {
			t.Errorf("route %s %v is documented as %v", p, ms, got)
		}
	}
	for p, ms := range documented {
		if _, ok := routed[p]; ok {
			continue
		}
		if want, ok := edgePaths[p]; !ok || !slices.Equal(want, ms) {
			t.Errorf("documented %s %v is not a route", p, ms)
		}
	}
	// The error codes are the contract's, all of them.
	codes := doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)["enum"].([]any)
	var got []string
	for _, c := range codes {
		got = append(got, c.(string))
	}
	want := []string{contract.CodeBadRequest, contract.CodeValidationFailed, contract.CodeUnauthenticated, contract.CodeTokenExpired,
		contract.CodeTokenRevoked, contract.CodeMFARequired, contract.CodeForbidden, contract.CodeCompanyMismatch, contract.CodeNotFound,
		contract.CodeConflict, contract.CodeRateLimited, contract.CodeQuotaExceeded, contract.CodeVersionUnsupported, contract.CodeVersionSunset,
		contract.CodePayloadTooLarge, contract.CodeUpstreamUnavailable, contract.CodeUpstreamTimeout, contract.CodeServiceUnavailable, contract.CodeInternal,
		contract.CodeQueryTooComplex, contract.CodeFailedDependency}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("error codes documented %v, contract %v", got, want)
	}
}

// responseSchema compiles the documented schema of an answer.
func responseSchema(t testing.TB, c *jsonschema.Compiler, doc map[string]any, path, method string, status int) *jsonschema.Schema {
	t.Helper()
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	op := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	responses := op["responses"].(map[string]any)
	code := strconv.Itoa(status)
	ptr := "#/paths/" + esc(path) + "/" + strings.ToLower(method) + "/responses/" + code
	r, ok := responses[code].(map[string]any)
	if !ok {
		r, ptr = responses["default"].(map[string]any), "#/paths/"+esc(path)+"/"+strings.ToLower(method)+"/responses/default"
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

// Answers of the service match the schemas the document gives them.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	doc := loadDoc(t)
	c := docCompiler(t)
	check := func(path, method string, a answer) {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(a.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := responseSchema(t, c, doc, path, method, a.Status).Validate(v); err != nil {
			t.Errorf("%s %s %d does not match the document: %v\n%s", method, path, a.Status, err, a.Raw)
		}
	}
	l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	check("/api/v1/auth/login", "POST", l)
	check("/api/v1/auth/login", "POST", e.login(t, "alice@acme.test", "wrong-password"))
	s := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": l.str("login_token"), "company_id": "acme"}})
	check("/api/v1/auth/select-company", "POST", s)
	tok := s.str("access_token")
	// Cookie mode: the body is a CookieSession, the tokens are cookies.
	l2 := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	ck := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{"login_token": l2.str("login_token"), "company_id": "acme", "cookie": true}})
	check("/api/v1/auth/select-company", "POST", ck)
	if ck.str("access_token") != "" || ck.data()["cookie"] != true || len(ck.Header.Values("Set-Cookie")) != 3 {
		t.Errorf("cookie mode answered %s with cookies %v", ck.Raw, ck.Header.Values("Set-Cookie"))
	}
	root := e.session(t, "root@erpgate.local", "acme").str("access_token")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/auth/me", bearer: tok},
		{method: "GET", path: "/api/v1/auth/sessions", bearer: tok},
		{method: "POST", path: "/api/v1/auth/api-keys", bearer: tok, body: map[string]any{"scope": "invoices:read"}},
		{method: "GET", path: "/api/v1/auth/api-keys", bearer: tok},
		{method: "POST", path: "/api/v1/auth/mfa/totp/enroll", bearer: tok},
		{method: "POST", path: "/api/v1/auth/mfa/totp/confirm", bearer: tok, body: map[string]any{"code": "12"}},
		{method: "GET", path: "/api/v1/admin/companies", bearer: root},
		{method: "GET", path: "/api/v1/admin/users", bearer: root},
		{method: "GET", path: "/api/v1/admin/memberships", bearer: root},
		{method: "GET", path: "/api/v1/admin/audit", bearer: root},
		{method: "GET", path: "/api/v1/admin/audit", bearer: tok},
		{method: "PUT", path: "/api/v1/admin/memberships/globex/bob@globex.test", bearer: root, body: map[string]any{"roles": []string{"viewer", "accountant"}}},
		{method: "GET", path: "/.well-known/jwks.json"},
	} {
		pattern := r.path
		if strings.HasPrefix(pattern, "/api/v1/admin/memberships/") {
			pattern = "/api/v1/admin/memberships/{company_id}/{user_id}"
		}
		check(pattern, r.method, e.do(t, r))
	}
	if t.Failed() {
		return
	}
	// And the check can fail: a success envelope is not a failure answer.
	bad := responseSchema(t, c, doc, "/api/v1/auth/login", "POST", 401)
	v, _ := jsonschema.UnmarshalJSON(strings.NewReader(l.Raw))
	if bad.Validate(v) == nil {
		t.Fatalf("a success answer validates as a 401: %s", l.Raw)
	}
}

// The GraphQL endpoint is documented: POST with a JSON body and GET with
// query parameters, answers in the GraphQL shape (never the envelope's
// success), the QUERY_TOO_COMPLEX code; real answers' shapes validate.
func TestOpenAPIGraphQL(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	item, ok := doc["paths"].(map[string]any)["/api/graphql"].(map[string]any)
	if !ok {
		t.Fatal("no /api/graphql in the document")
	}
	post, get := item["post"].(map[string]any), item["get"].(map[string]any)
	if post == nil || get == nil {
		t.Fatalf("/api/graphql documents %v", item)
	}
	body := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	if body["$ref"] != "#/components/schemas/GraphQLRequest" {
		t.Fatalf("POST body %v", body)
	}
	var params []string
	for _, p := range get["parameters"].([]any) {
		params = append(params, p.(map[string]any)["name"].(string))
	}
	if !slices.Equal(params, []string{"query", "operationName", "variables", "extensions"}) {
		t.Fatalf("GET parameters %v", params)
	}
	for _, op := range []map[string]any{post, get} {
		for _, code := range []string{"200", "400", "401", "403", "429"} {
			if op["responses"].(map[string]any)[code] == nil {
				t.Errorf("%s has no %s answer", op["operationId"], code)
			}
		}
	}
	ec := doc["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)
	if !slices.Contains(ec["enum"].([]any), any(contract.CodeQueryTooComplex)) || fmt.Sprint(ec["x-status"].(map[string]any)["QUERY_TOO_COMPLEX"]) != "400" || !strings.Contains(ec["description"].(string), "QUERY_TOO_COMPLEX") {
		t.Fatalf("QUERY_TOO_COMPLEX is not documented: %v", ec["x-status"])
	}

	if !bytes.Contains(openapi.Page, []byte(`<a href="/api/graphql">`)) {
		t.Fatal("the docs page does not link the GraphQL endpoint")
	}

	c := docCompiler(t)
	const meta = `"extensions": {"meta": {"request_id": "01a20184-d9b4-7247-bdeb-b8c210fb9da1", "timestamp": "2026-12-02T16:00:00.000Z", "cost": 21, "calls": 2}}`
	cases := []struct {
		method string
		status int
		answer string
		valid  bool
	}{
		{"POST", 200, `{"data": {"invoices": {"nodes": [{"number": "ACME-0001", "customer": null}]}},
		  "errors": [{"message": "not found", "path": ["invoices", "nodes", 0, "customer"], "extensions": {"code": "NOT_FOUND"}}], ` + meta + `}`, true},
		{"GET", 200, `{"data": {"__typename": "Query"}, ` + meta + `}`, true},
		{"POST", 400, `{"errors": [{"message": "the query costs 601, more than 500", "locations": [{"line": 1, "column": 3}],
		  "extensions": {"code": "QUERY_TOO_COMPLEX", "context": {"cost": 601, "limit": 500}}}], ` + meta + `}`, true},
		{"POST", 401, `{"errors": [{"message": "authentication required", "extensions": {"code": "UNAUTHENTICATED"}}], ` + meta + `}`, true},
		{"GET", 429, `{"errors": [{"message": "rate limited", "extensions": {"code": "RATE_LIMITED", "context": {"limit": 60}}}], ` + meta + `}`, true},
		// the envelope is not a GraphQL answer
		{"POST", 401, `{"success": false, "data": null, "meta": {"request_id": "x", "timestamp": "2026-12-02T16:00:00Z"},
		  "errors": [{"code": "UNAUTHENTICATED", "message": "x"}]}`, false},
		// a refusal has no data; an error needs its code
		{"POST", 400, `{"data": null, "errors": [{"message": "x", "extensions": {"code": "BAD_REQUEST"}}], ` + meta + `}`, false},
		{"POST", 200, `{"data": {}, "errors": [{"message": "x", "extensions": {}}], ` + meta + `}`, false},
		{"POST", 400, `{"errors": [{"message": "x", "extensions": {"code": "NO_SUCH_CODE"}}], ` + meta + `}`, false},
	}
	for i, tc := range cases {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.answer))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		err = responseSchema(t, c, doc, "/api/graphql", tc.method, tc.status).Validate(v)
		if (err == nil) != tc.valid {
			t.Errorf("case %d (%s %d): valid %v, want %v: %v", i, tc.method, tc.status, err == nil, tc.valid, err)
		}
	}
}

// unresolved lists the document's references (every "$ref", in paths,
// parameters, responses and headers as well as schemas) that name no part
// of it, with where they are.
func unresolved(doc map[string]any) []string {
	var bad []string
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && !resolves(doc, ref) {
				bad = append(bad, at+": "+ref)
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for i, e := range v {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	sort.Strings(bad)
	return bad
}

func resolves(doc map[string]any, ref string) bool {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false // the document is self-contained
	}
	var cur any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[tok]; !ok {
			return false
		}
	}
	return true
}

// Every reference resolves, not only those inside component schemas (which
// TestOpenAPIValidates compiles), and every example fits the schema beside
// it: a media type's example(s), a parameter's, a component schema's.
func TestOpenAPIReferencesAndExamples(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	if bad := unresolved(doc); len(bad) > 0 {
		t.Errorf("references that resolve to nothing:\n%s", strings.Join(bad, "\n"))
	}
	// And the check can fail.
	broken := map[string]any{"paths": map[string]any{"/x": map[string]any{"get": map[string]any{"parameters": []any{
		map[string]any{"$ref": "#/components/parameters/Nope"}}}}}, "components": map[string]any{"parameters": map[string]any{}}}
	if bad := unresolved(broken); len(bad) != 1 {
		t.Fatalf("a broken reference is not found: %v", bad)
	}

	c := docCompiler(t)
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	checked := 0
	check := func(schemaPtr, at string, example any) {
		t.Helper()
		s, err := c.Compile(docURL + schemaPtr)
		if err != nil {
			t.Errorf("%s: %v", schemaPtr, err)
			return
		}
		if err := s.Validate(example); err != nil {
			t.Errorf("the example at %s does not fit its schema: %v", at, err)
		}
		checked++
	}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			_, hasSchema := v["schema"].(map[string]any)
			if ex, ok := v["example"]; ok {
				switch {
				case hasSchema: // a media type or a parameter
					check(at+"/schema", at+"/example", ex)
				case strings.HasPrefix(at, "#/components/schemas/"): // a schema
					check(at, at+"/example", ex)
				}
			}
			if exs, ok := v["examples"].(map[string]any); ok && hasSchema {
				for name, e := range exs {
					if val, ok := e.(map[string]any)["value"]; ok {
						check(at+"/schema", at+"/examples/"+name, val)
					}
				}
			}
			for k, e := range v {
				walk(e, at+"/"+esc(k))
			}
		case []any:
			for i, e := range v {
				walk(e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	walk(doc, "#")
	if checked == 0 {
		t.Fatal("no example was checked")
	}
	t.Logf("%d examples fit their schemas", checked)
}
