package graphql

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// introspectionQuery is the query GraphiQL and code generators send.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations isRepeatable args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }
}`

// TestGraphQLOverHTTP: authentication refusals in the GraphQL shape, the
// request forms GraphQL over HTTP defines (content types, methods, GET),
// parse and validation errors, operationName and variables, and
// introspection for a signed-in caller.
func TestGraphQLOverHTTP(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	tok := login(t, in.URL).aliceAcme
	simple := request{Query: `{ __typename invoice(id: "inv_acme_0001") { __typename number } }`}

	t.Run("401 in the GraphQL shape", func(t *testing.T) {
		for _, a := range []*answer{
			post(t, in.URL, "", simple, nil),
			post(t, in.URL, "not-a-token", simple, nil),
			get(t, in.URL, "", url.Values{"query": {simple.Query}}, nil),
		} {
			if a.Status != 401 || len(a.Errors) != 1 || a.code() != "UNAUTHENTICATED" || a.Header.Get("WWW-Authenticate") == "" {
				t.Fatalf("without a valid token: %s %v", a, a.Header)
			}
			if _, ok := a.Top["data"]; ok {
				t.Fatalf("data without a token: %s", a.Raw)
			}
		}
	})

	t.Run("request forms", func(t *testing.T) {
		a := post(t, in.URL, tok, simple, nil)
		if a.Status != 200 || len(a.Errors) > 0 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("POST: %s %v", a, a.Header)
		}
		d := a.data(t)
		if d["__typename"] != "Query" || at(t, d, "invoice", "__typename") != "Invoice" || at(t, d, "invoice", "number") != "ACME-0001" {
			t.Fatalf("data %v", d)
		}
		// the spec's media type when the client accepts it
		a = post(t, in.URL, tok, simple, map[string]string{"Accept": "application/graphql-response+json, application/json;q=0.9"})
		if a.Status != 200 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/graphql-response+json") {
			t.Fatalf("Accept graphql-response+json: %d %v", a.Status, a.Header)
		}
		a = post(t, in.URL, tok, simple, map[string]string{"Accept": "application/json"})
		if !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("Accept application/json: %v", a.Header)
		}
		// a query over GET
		a = get(t, in.URL, tok, url.Values{"query": {simple.Query}}, nil)
		if a.Status != 200 || at(t, a.data(t), "invoice", "number") != "ACME-0001" {
			t.Fatalf("GET: %s", a)
		}
		// not JSON: 415
		a = decode(t, httpt.Do(t, http.MethodPost, in.URL+endpoint, []byte(simple.Query),
			map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "text/plain"}))
		if a.Status != 415 || a.code() != "BAD_REQUEST" {
			t.Fatalf("text/plain: %s", a)
		}
		// malformed JSON: 400
		a = decode(t, httpt.Do(t, http.MethodPost, in.URL+endpoint, []byte(`{"query": `),
			map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}))
		if a.Status != 400 || a.code() != "BAD_REQUEST" {
			t.Fatalf("malformed JSON: %s", a)
		}
		// other methods: 405 naming what is allowed
		resp := httpt.Do(t, http.MethodPut, in.URL+endpoint, httpt.JSON(t, simple), map[string]string{"Authorization": "Bearer " + tok})
		if a = decode(t, resp); a.Status != 405 || a.Header.Get("Allow") != "GET, POST" || len(a.Errors) == 0 {
			t.Fatalf("PUT: %s %v", a, a.Header)
		}
	})

	t.Run("parse and validation errors", func(t *testing.T) {
		for _, q := range []string{
			`{ invoices(first: 2) { nodes { number }`,     // does not parse
			`{ invoices(first: 2) { nodes { colour } } }`, // no such field
			`{ invoice { number } }`,                      // a required argument missing
			`{ invoices(first: "two") { nodes { id } } }`, // an argument of the wrong type
		} {
			a := post(t, in.URL, tok, request{Query: q}, nil)
			if a.Status != 400 || a.code() != "BAD_REQUEST" || len(a.Errors[0].Locations) == 0 || a.Errors[0].Locations[0].Line < 1 {
				t.Fatalf("%s: %s", q, a)
			}
			if _, ok := a.Top["data"]; ok {
				t.Fatalf("%s: data in a request error: %s", q, a.Raw)
			}
		}
		// subscriptions are left out
		a := post(t, in.URL, tok, request{Query: `subscription { invoices { nodes { id } } }`}, nil)
		if a.Status != 400 || a.code() != "BAD_REQUEST" {
			t.Fatalf("a subscription: %s", a)
		}
	})

	t.Run("operationName, variables, fragments, cursors", func(t *testing.T) {
		doc := `
		query One($id: ID!) { invoice(id: $id) { ...Inv } }
		query Page($n: Int = 2, $status: [String!], $after: String) {
		  invoices(first: $n, after: $after, sort: "number", filter: {status: $status}) {
		    totalCount nodes { ...Inv } pageInfo { hasNextPage hasPreviousPage endCursor }
		  }
		}
		fragment Inv on Invoice { number status }`
		a := post(t, in.URL, tok, request{Query: doc, OperationName: "One", Variables: map[string]any{"id": "inv_acme_0002"}}, nil)
		if a.Status != 200 || len(a.Errors) > 0 || at(t, a.data(t), "invoice", "number") != "ACME-0002" || at(t, a.data(t), "invoice", "status") == nil {
			t.Fatalf("operation One: %s", a)
		}
		// Page with its default $n, then the next page by its endCursor:
		// the same invoices REST gives for page 1 and 2 of that filter
		status := []any{"paid", "overdue"}
		restFilter := "filter=" + url.QueryEscape(`status:in:"paid","overdue"`)
		var cursor any
		for page := 1; page <= 2; page++ {
			a = post(t, in.URL, tok, request{Query: doc, OperationName: "Page", Variables: map[string]any{"status": status, "after": cursor}}, nil)
			if a.Status != 200 || len(a.Errors) > 0 {
				t.Fatalf("Page %d: %s", page, a)
			}
			d := a.data(t)
			want := rest(t, in.URL, tok, "/api/v2/invoices?sort=number&limit=2&page="+strconv.Itoa(page)+"&"+restFilter).([]any)
			got := list(t, d, "invoices", "nodes")
			if len(got) != 2 || len(want) != 2 {
				t.Fatalf("page %d: %v, REST %v", page, got, want)
			}
			for i := range got {
				sameFields(t, "page", got[i].(map[string]any), want[i].(map[string]any), "number", "status")
			}
			if at(t, d, "invoices", "pageInfo", "hasNextPage") != true || at(t, d, "invoices", "pageInfo", "hasPreviousPage") != (page > 1) {
				t.Fatalf("page %d: pageInfo %v", page, at(t, d, "invoices", "pageInfo"))
			}
			cursor = at(t, d, "invoices", "pageInfo", "endCursor")
			if s, _ := cursor.(string); s == "" {
				t.Fatalf("page %d: endCursor %v", page, cursor)
			}
		}
		// a page that does not start at a multiple of its size: edges'
		// cursors, then five from the second item on
		d := query(t, in.URL, tok, `{ invoices(first: 2, sort: "number") { edges { cursor node { number } } } }`, nil)
		after := at(t, d, "invoices", "edges", 0, "cursor")
		d = query(t, in.URL, tok, `query($after: String) { invoices(first: 5, after: $after, sort: "number") {
		  nodes { number } pageInfo { hasPreviousPage hasNextPage } } }`, map[string]any{"after": after})
		want := rest(t, in.URL, tok, "/api/v2/invoices?sort=number&limit=6").([]any)[1:]
		if got := ids(t, list(t, d, "invoices", "nodes"), "number"); fmt.Sprint(got) != fmt.Sprint(ids(t, want, "number")) ||
			at(t, d, "invoices", "pageInfo", "hasPreviousPage") != true {
			t.Fatalf("five after the first: %v, REST %v (%v)", got, ids(t, want, "number"), d)
		}
		// filter values with commas and quotes are values, not syntax
		d = query(t, in.URL, tok, `query($s: [String!]) { invoices(filter: {status: $s}) { totalCount nodes { id } } }`,
			map[string]any{"s": []string{"paid,sent", `draft" OR "1"="1`, "x\\"}})
		if at(t, d, "invoices", "totalCount") != float64(0) || len(list(t, d, "invoices", "nodes")) != 0 {
			t.Fatalf("odd filter values matched: %v", d)
		}
		d = query(t, in.URL, tok, `{ paid: invoices(filter: {status: ["paid"]}) { totalCount } both: invoices(filter: {status: ["paid", "sent"]}) { totalCount } }`, nil)
		paid, sent := restTotal(t, in.URL, tok, "/api/v2/invoices?limit=1&filter=status:eq:paid"), restTotal(t, in.URL, tok, "/api/v2/invoices?limit=1&filter=status:eq:sent")
		if paid == 0 || sent == 0 || at(t, d, "paid", "totalCount") != float64(paid) || at(t, d, "both", "totalCount") != float64(paid+sent) {
			t.Fatalf("totals %v; REST: %d paid, %d sent", d, paid, sent)
		}
		// a cursor this endpoint did not hand out
		a = post(t, in.URL, tok, request{Query: doc, OperationName: "Page", Variables: map[string]any{"after": "bm90LWEtY3Vyc29y"}}, nil)
		if a.Status != 200 || a.code() != "BAD_REQUEST" || at(t, a.data(t), "invoices") != nil || len(a.Errors[0].Path) != 1 || a.Errors[0].Path[0] != "invoices" {
			t.Fatalf("a forged cursor: %s", a)
		}
		for _, r := range []request{
			{Query: doc}, // two operations, none named
			{Query: doc, OperationName: "Nope"},
		} {
			if a := post(t, in.URL, tok, r, nil); a.Status != 400 || a.code() != "BAD_REQUEST" {
				t.Fatalf("operationName %q: %s", r.OperationName, a)
			}
		}
		for _, v := range []map[string]any{
			{"id": map[string]any{"x": 1}}, // not an ID
			{},                             // $id is required
		} {
			a := post(t, in.URL, tok, request{Query: doc, OperationName: "One", Variables: v}, nil)
			if a.Status != 400 || a.code() != "VALIDATION_FAILED" {
				t.Fatalf("variables %v: %s", v, a)
			}
		}
	})

	t.Run("introspection", func(t *testing.T) {
		a := post(t, in.URL, tok, request{Query: introspectionQuery, OperationName: "IntrospectionQuery"}, nil)
		if a.Status != 200 || len(a.Errors) > 0 {
			t.Fatalf("introspection: %s", a)
		}
		d := a.data(t)
		if at(t, d, "__schema", "queryType", "name") != "Query" || at(t, d, "__schema", "mutationType", "name") != "Mutation" ||
			at(t, d, "__schema", "subscriptionType") != nil {
			t.Fatalf("root types %v", obj(t, d, "__schema"))
		}
		types := map[string]map[string]any{}
		for _, ty := range list(t, d, "__schema", "types") {
			m := ty.(map[string]any)
			types[m["name"].(string)] = m
		}
		for _, name := range []string{"Invoice", "Customer", "Product", "LedgerEntry", "InventoryItem", "InvoiceConnection", "InvoiceEdge",
			"PageInfo", "Money", "InvoiceFilter", "InvoiceInput", "String", "__Schema"} {
			if types[name] == nil {
				t.Errorf("type %s missing", name)
			}
		}
		if t.Failed() {
			return
		}
		fieldType := func(typ, field string) map[string]any {
			for _, f := range list(t, types[typ], "fields") {
				if f.(map[string]any)["name"] == field {
					return obj(t, f, "type")
				}
			}
			t.Fatalf("%s.%s missing", typ, field)
			return nil
		}
		if ft := fieldType("Invoice", "customer"); ft["kind"] != "OBJECT" || ft["name"] != "Customer" {
			t.Fatalf("Invoice.customer: %v", ft)
		}
		if ft := fieldType("Customer", "invoices"); ft["name"] != "InvoiceConnection" {
			t.Fatalf("Customer.invoices: %v", ft)
		}
		if ft := fieldType("Product", "stock"); ft["name"] != "InventoryItem" {
			t.Fatalf("Product.stock: %v", ft)
		}
		// [Invoice!]! as the spec writes it
		if ft := fieldType("InvoiceConnection", "nodes"); ft["kind"] != "NON_NULL" || at(t, ft, "ofType", "kind") != "LIST" ||
			at(t, ft, "ofType", "ofType", "kind") != "NON_NULL" || at(t, ft, "ofType", "ofType", "ofType", "name") != "Invoice" {
			t.Fatalf("InvoiceConnection.nodes: %v", ft)
		}
		var dirs []string
		for _, dd := range list(t, d, "__schema", "directives") {
			dirs = append(dirs, dd.(map[string]any)["name"].(string))
		}
		for _, want := range []string{"skip", "include", "deprecated"} {
			if !slices.Contains(dirs, want) {
				t.Errorf("directive %s missing from %v", want, dirs)
			}
		}
		// introspection does not count towards the limits: the free plan
		// (max_depth 8) runs the whole query GraphiQL sends, nested ofType and all
		bob := login(t, in.URL).bobGlobex
		if a := post(t, in.URL, bob, request{Query: introspectionQuery}, nil); a.Status != 200 || len(a.Errors) > 0 || a.Extensions.Meta.Cost == nil || *a.Extensions.Meta.Cost != 0 {
			t.Fatalf("introspection on the free plan: %.300s", a)
		}
		// __type with a variable; an unknown name is null
		d = query(t, in.URL, tok, `query($n: String!) { t: __type(name: $n) { name kind } none: __type(name: "Nope") { name } }`, map[string]any{"n": "InvoiceFilter"})
		if at(t, d, "t", "kind") != "INPUT_OBJECT" || d["none"] != nil {
			t.Fatalf("__type: %v", d)
		}
	})
}
