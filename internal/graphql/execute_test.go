package graphql

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

func TestExecuteBatchesRelations(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)

	f := fixtures(50)
	r := run(t, s, f, nil, `{ invoices(first: 50) { nodes { number customer { display_name } } } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors %+v", *r.Errors[0])
	}
	if f.fetches != 2 || r.Calls != 2 || len(f.calls) != 2 {
		t.Fatalf("fetches %d, calls %d (%d recorded), want 2", f.fetches, r.Calls, len(f.calls))
	}
	if got := f.calls[1].Query["filter"]; len(got) != 1 || !strings.HasPrefix(got[0], `id:in:"c-1","c-2",`) {
		t.Errorf("customers filter %q", got)
	}
	nodes := decoded(t, r)["invoices"].(map[string]any)["nodes"].([]any)
	if len(nodes) != 50 {
		t.Fatalf("%d nodes", len(nodes))
	}
	for i, n := range nodes {
		n := n.(map[string]any)
		want := "Customer, " + strconv.Itoa((i+1)%7)
		if n["number"] != "N"+strconv.Itoa(i+1) || n["customer"].(map[string]any)["display_name"] != want {
			t.Fatalf("node %d: %v, want customer %s", i, n, want)
		}
	}

	// customers' invoices too: one more level, one more call
	f = fixtures(50)
	r = run(t, s, f, nil, `{ invoices(first: 50) { nodes { customer { id invoices(first: 3) { totalCount nodes { number } pageInfo { hasNextPage } } } } } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors %+v", *r.Errors[0])
	}
	if f.fetches != 3 || r.Calls != 3 {
		t.Fatalf("fetches %d, calls %d, want 3", f.fetches, r.Calls)
	}
	c0 := decoded(t, r)["invoices"].(map[string]any)["nodes"].([]any)[6].(map[string]any)["customer"].(map[string]any)
	// customer c-0 has invoices 7, 14, 21, 28, 35, 42, 49
	inv := c0["invoices"].(map[string]any)
	if c0["id"] != "c-0" || inv["totalCount"] != float64(7) || len(inv["nodes"].([]any)) != 3 ||
		inv["nodes"].([]any)[0].(map[string]any)["number"] != "N7" || inv["pageInfo"].(map[string]any)["hasNextPage"] != true {
		t.Fatalf("customer c-0: %v", c0)
	}

	// numeric keys (products' ids) join string keys (inventory's ids)
	f = fixtures(1)
	r = run(t, s, f, nil, `{ products { nodes { id stock { stock } } } }`, nil)
	if len(r.Errors) > 0 || f.fetches != 2 {
		t.Fatalf("errors %v, fetches %d", r.Errors, f.fetches)
	}
	if got := f.calls[1].Query["filter"]; !reflect.DeepEqual(got, []string{"id:in:1,2,3"}) {
		t.Errorf("inventory filter %q", got)
	}
	if want := `{"products":{"nodes":[{"id":"1","stock":{"stock":10}},{"id":"2","stock":{"stock":20}},{"id":"3","stock":{"stock":30}}]}}`; string(r.Data) != want {
		t.Errorf("data %s\nwant %s", r.Data, want)
	}
}

func TestExecuteBatchChunksKeys(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(0)
	for i := 0; i < 150; i++ { // 150 customers, one invoice each
		id := "c" + strconv.Itoa(i)
		f.data["customers"] = append(f.data["customers"], map[string]any{"id": id, "display_name": "n" + id})
		f.data["invoices"] = append(f.data["invoices"], map[string]any{"id": "i" + strconv.Itoa(i), "customer_id": id})
	}
	r := run(t, s, f, nil, `{ invoices(first: 150) { nodes { customer { display_name } } } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("errors %+v", *r.Errors[0])
	}
	// one list call, then the 150 keys in two chunks (100 + 50) in one Fetch
	if f.fetches != 2 || r.Calls != 3 {
		t.Fatalf("fetches %d calls %d", f.fetches, r.Calls)
	}
	nodes := decoded(t, r)["invoices"].(map[string]any)["nodes"].([]any)
	if nodes[149].(map[string]any)["customer"].(map[string]any)["display_name"] != "nc149" {
		t.Fatalf("last: %v", nodes[149])
	}
}

func TestExecutePagination(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	const q = `query($after: String, $first: Int) { invoices(first: $first, after: $after) {
		edges { cursor node { number } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } }`
	type page struct {
		numbers        []string
		next, previous bool
		end            string
	}
	read := func(t *testing.T, r *Response) page {
		t.Helper()
		if len(r.Errors) > 0 {
			t.Fatalf("errors %+v", *r.Errors[0])
		}
		conn := decoded(t, r)["invoices"].(map[string]any)
		var p page
		for i, e := range conn["edges"].([]any) {
			e := e.(map[string]any)
			p.numbers = append(p.numbers, e["node"].(map[string]any)["number"].(string))
			if i == len(conn["edges"].([]any))-1 {
				p.end = e["cursor"].(string)
			}
		}
		pi := conn["pageInfo"].(map[string]any)
		p.next, p.previous = pi["hasNextPage"].(bool), pi["hasPreviousPage"].(bool)
		if p.end != "" && pi["endCursor"] != p.end {
			t.Fatalf("endCursor %v, last edge's cursor %s", pi["endCursor"], p.end)
		}
		return p
	}
	numbers := func(from, n int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, "N"+strconv.Itoa(i))
		}
		return out
	}

	t.Run("pages follow cursors", func(t *testing.T) {
		t.Parallel()
		f := fixtures(25)
		p := read(t, run(t, s, f, nil, q, map[string]any{"first": 10}))
		if !reflect.DeepEqual(p.numbers, numbers(1, 10)) || !p.next || p.previous {
			t.Fatalf("page 1 %+v", p)
		}
		p = read(t, run(t, s, f, nil, q, map[string]any{"first": 10, "after": p.end}))
		if !reflect.DeepEqual(p.numbers, numbers(11, 10)) || !p.next || !p.previous {
			t.Fatalf("page 2 %+v", p)
		}
		p = read(t, run(t, s, f, nil, q, map[string]any{"first": 10, "after": p.end}))
		if !reflect.DeepEqual(p.numbers, numbers(21, 5)) || p.next || !p.previous {
			t.Fatalf("page 3 %+v", p)
		}
		if got := f.calls[1].Query; got.Get("page") != "2" || got.Get("limit") != "10" {
			t.Fatalf("page 2's call %v", got)
		}
	})
	t.Run("offset not a multiple of first", func(t *testing.T) {
		t.Parallel()
		f := fixtures(300)
		// after the 5th item (offset 4): items 6..15 from page 1 of 15
		p := read(t, run(t, s, f, nil, q, map[string]any{"first": 10, "after": cursor(4)}))
		if !reflect.DeepEqual(p.numbers, numbers(6, 10)) || !p.next || len(f.calls) != 1 || f.calls[0].Query.Get("limit") != "15" || f.calls[0].Query.Get("page") != "1" {
			t.Fatalf("%+v, calls %v", p, f.calls)
		}
		// offset 195, first 10: page 16 of 13 (195..207) holds 195..204
		f = fixtures(300)
		p = read(t, run(t, s, f, nil, q, map[string]any{"first": 10, "after": cursor(194)}))
		if !reflect.DeepEqual(p.numbers, numbers(196, 10)) || len(f.calls) != 1 ||
			f.calls[0].Query.Get("page") != "16" || f.calls[0].Query.Get("limit") != "13" {
			t.Fatalf("%+v, calls %v", p, f.calls)
		}
		// offset 51, first 150: no page of 150..200 holds 51..200: pages 1
		// and 2 of 150, in one Fetch
		f = fixtures(300)
		p = read(t, run(t, s, f, nil, q, map[string]any{"first": 150, "after": cursor(50)}))
		if !reflect.DeepEqual(p.numbers, numbers(52, 150)) || len(f.calls) != 2 || f.fetches != 1 ||
			f.calls[0].Query.Get("page") != "1" || f.calls[1].Query.Get("page") != "2" || f.calls[1].Query.Get("limit") != "150" {
			t.Fatalf("%+v, calls %v", p, f.calls)
		}
	})
	t.Run("no total: hasNextPage from the backend", func(t *testing.T) {
		t.Parallel()
		f := fixtures(20)
		f.noTotal = true
		r := run(t, s, f, nil, q, map[string]any{"first": 10, "after": cursor(9)})
		if p := read(t, r); p.next || len(p.numbers) != 10 {
			t.Fatalf("%+v", p)
		}
		if decoded(t, r)["invoices"].(map[string]any)["totalCount"] != nil {
			t.Fatal("totalCount without a total")
		}
	})
	for _, c := range []struct {
		name string
		vars map[string]any
	}{
		{"bad cursor", map[string]any{"after": "bm9wZQ"}},
		{"first 0", map[string]any{"first": 0}},
		{"first 201", map[string]any{"first": 201}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := fixtures(5)
			r := run(t, s, f, nil, q, c.vars)
			if len(f.calls) != 0 || len(r.Errors) != 1 || r.Errors[0].Code != contract.CodeBadRequest ||
				!reflect.DeepEqual(r.Errors[0].Path, []any{"invoices"}) || string(r.Data) != `{"invoices":null}` {
				t.Fatalf("calls %d, errors %+v, data %s", len(f.calls), r.Errors, r.Data)
			}
		})
	}
}

func TestExecuteFilter(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(3)
	r := run(t, s, f, nil, `query($s: [String!]) { invoices(filter: {status: $s, customer_id: ["c-1"]}, sort: "-number") { totalCount } }`,
		map[string]any{"s": []any{"open", `a"b,c`}})
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	q := f.calls[0].Query
	if want := []string{`status:in:"open","a\"b,c"`, "customer_id:eq:c-1"}; !reflect.DeepEqual(q["filter"], want) {
		t.Errorf("filter %q, want %q", q["filter"], want)
	}
	if q.Get("sort") != "-number" || q.Get("limit") != "20" {
		t.Errorf("query %v", q)
	}
	if string(r.Data) != `{"invoices":{"totalCount":1}}` {
		t.Errorf("data %s", r.Data)
	}
	// an empty list matches nothing: no call
	f = fixtures(3)
	r = run(t, s, f, nil, `{ invoices(filter: {status: []}) { totalCount nodes { id } } }`, nil)
	if len(f.calls) != 0 || string(r.Data) != `{"invoices":{"totalCount":0,"nodes":[]}}` {
		t.Fatalf("calls %d data %s", len(f.calls), r.Data)
	}
}

func TestExecuteSelections(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(3)
	r := run(t, s, f, nil, `query($yes: Boolean!) {
		__typename
		one: invoice(id: "inv-1") { __typename ...parts total @skip(if: $yes) { amount } }
		two: invoice(id: "inv-2") { n: number ... on Invoice { status } number @include(if: $yes) }
	}
	fragment parts on Invoice { id number customer { display_name } }`, map[string]any{"yes": true})
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	want := `{"__typename":"Query","one":{"__typename":"Invoice","id":"inv-1","number":"N1","customer":{"display_name":"Customer, 1"}},"two":{"n":"N2","status":"open","number":"N2"}}`
	if string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
	if f.fetches != 2 || r.Calls != 3 {
		t.Fatalf("fetches %d calls %d", f.fetches, r.Calls)
	}
}

func TestExecuteNotFoundAndErrors(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(3)
	r := run(t, s, f, nil, `{ a: invoice(id: "nope") { id } b: invoice(id: "inv-1") { id } }`, nil)
	if string(r.Data) != `{"a":null,"b":{"id":"inv-1"}}` || len(r.Errors) != 1 || r.Errors[0].Code != contract.CodeNotFound ||
		!reflect.DeepEqual(r.Errors[0].Path, []any{"a"}) || r.Errors[0].Locations[0] != (Location{1, 3}) {
		t.Fatalf("data %s errors %+v", r.Data, r.Errors)
	}

	// a failed batch: one error per parent, at most 50, then one more
	f = fixtures(60)
	f.fail["customers"] = &Error{Message: "customers is down", Code: contract.CodeUpstreamUnavailable}
	r = run(t, s, f, nil, `{ invoices(first: 60) { nodes { number customer { id } } } }`, nil)
	if len(r.Errors) != 51 || f.fetches != 2 {
		t.Fatalf("%d errors, %d fetches", len(r.Errors), f.fetches)
	}
	if e := r.Errors[3]; e.Code != contract.CodeUpstreamUnavailable || !reflect.DeepEqual(e.Path, []any{"invoices", "nodes", 3, "customer"}) {
		t.Fatalf("error %+v", *e)
	}
	if e := r.Errors[50]; !strings.Contains(e.Message, "and at 10 more paths") || e.Path != nil {
		t.Fatalf("summary %+v", *e)
	}
	node := decoded(t, r)["invoices"].(map[string]any)["nodes"].([]any)[59].(map[string]any)
	if node["customer"] != nil || node["number"] != "N60" {
		t.Fatalf("node %v", node)
	}
}

func TestExecuteAuthorizer(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(5)
	var asked []string
	allow := func(backend string, write bool) *Error {
		asked = append(asked, backend+":"+map[bool]string{false: "read", true: "write"}[write])
		if backend == "customers" {
			return &Error{Message: "customers:read is missing", Code: contract.CodeForbidden}
		}
		return nil
	}
	r := run(t, s, f, allow, `{ invoices(first: 5) { nodes { number customer { id } } } c: customer(id: "c-1") { id } }`, nil)
	if f.fetches != 1 || len(f.calls) != 1 || f.calls[0].Backend != "invoices" {
		t.Fatalf("calls %+v", f.calls)
	}
	if len(r.Errors) != 6 || r.Errors[0].Code != contract.CodeForbidden || !reflect.DeepEqual(r.Errors[0].Path, []any{"c"}) ||
		!reflect.DeepEqual(r.Errors[5].Path, []any{"invoices", "nodes", 4, "customer"}) {
		t.Fatalf("errors %d %+v", len(r.Errors), r.Errors)
	}
	if !strings.HasPrefix(string(r.Data), `{"invoices":{"nodes":[{"number":"N1","customer":null},`) || !strings.HasSuffix(string(r.Data), `"c":null}`) {
		t.Fatalf("data %s", r.Data)
	}
	if !reflect.DeepEqual(asked, []string{"invoices:read", "customers:read", "customers:read"}) {
		t.Fatalf("asked %v", asked)
	}

	// a mutation asks for write, and a refusal makes no call
	f = fixtures(1)
	r = run(t, s, f, func(b string, w bool) *Error {
		if w {
			return &Error{Message: "invoices:write is missing", Code: contract.CodeForbidden}
		}
		return nil
	}, `mutation { deleteInvoice(id: "inv-1") }`, nil)
	if len(f.calls) != 0 || string(r.Data) != `{"deleteInvoice":null}` || r.Errors[0].Code != contract.CodeForbidden {
		t.Fatalf("calls %d data %s errors %+v", len(f.calls), r.Data, r.Errors)
	}
}

func TestExecuteNonNull(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(2)
	delete(f.data["invoices"][0]["total"].(map[string]any), "amount") // Money.amount: String!
	r := run(t, s, f, nil, `{ invoices { nodes { number total { amount currency } } } }`, nil)
	if want := `{"invoices":{"nodes":[{"number":"N1","total":null},{"number":"N2","total":{"amount":"2.00","currency":"EUR"}}]}}`; string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
	if len(r.Errors) != 1 || !reflect.DeepEqual(r.Errors[0].Path, []any{"invoices", "nodes", 0, "total", "amount"}) ||
		r.Errors[0].Code != contract.CodeUpstreamUnavailable || r.Errors[0].Message != "the backend gave no value for Money.amount" {
		t.Fatalf("errors %+v", r.Errors)
	}

	// Invoice.id (ID!) missing: the node is null, nodes ([Invoice!]!) is
	// null, so the connection is: invoices (nullable) is null
	f = fixtures(2)
	delete(f.data["invoices"][1], "id")
	r = run(t, s, f, nil, `{ invoices { nodes { id } } c: customer(id: "c-1") { id } }`, nil)
	if string(r.Data) != `{"invoices":null,"c":{"id":"c-1"}}` || len(r.Errors) != 1 ||
		!reflect.DeepEqual(r.Errors[0].Path, []any{"invoices", "nodes", 1, "id"}) {
		t.Fatalf("data %s errors %+v", r.Data, r.Errors)
	}
}

func TestExecuteCoercion(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(0)
	f.data["inventory"] = []map[string]any{
		{"id": 1, "stock": 3.0, "price": 2, "sku": 12},
		{"id": "2", "stock": "3", "price": "x", "sku": true},
		{"id": "3", "stock": 1e12},
	}
	r := run(t, s, f, nil, `{ inventoryItems { nodes { id stock price sku } } }`, nil)
	want := `{"inventoryItems":{"nodes":[{"id":"1","stock":3,"price":2,"sku":"12"},{"id":"2","stock":null,"price":null,"sku":null},{"id":"3","stock":null,"price":null,"sku":null}]}}`
	if string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
	var msgs []string
	for _, e := range r.Errors {
		msgs = append(msgs, e.Message)
	}
	if wantMsgs := []string{
		"the backend's value of InventoryItem.stock is not a Int",
		"the backend's value of InventoryItem.price is not a Float",
		"the backend's value of InventoryItem.sku is not a String",
		"the backend's value of InventoryItem.stock is not a Int",
	}; !reflect.DeepEqual(msgs, wantMsgs) {
		t.Fatalf("errors %q", msgs)
	}
}

func TestExecuteMutations(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(1)
	r := run(t, s, f, nil, `mutation($in: InvoiceInput!) {
		created: createInvoice(input: $in) { id status customer { display_name } }
		updateInvoice(id: "inv-1", input: {status: "paid", total: {amount: "2", currency: "EUR"}}) { id status }
		deleteInvoice(id: "inv-1")
	}`, map[string]any{"in": map[string]any{"customer_id": "c-2", "total": map[string]any{"amount": "1.50", "currency": "EUR"}}})
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	want := `{"created":{"id":"new","status":null,"customer":{"display_name":"Customer, 2"}},"updateInvoice":{"id":"inv-1","status":"paid"},"deleteInvoice":true}`
	if string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
	// serial: create, its relation, update, delete: four Fetches
	if f.fetches != 4 {
		t.Fatalf("fetches %d", f.fetches)
	}
	var body map[string]any
	if err := json.Unmarshal(f.calls[0].Body, &body); err != nil || f.calls[0].Op != OpCreate ||
		!reflect.DeepEqual(body, map[string]any{"customer_id": "c-2", "total": map[string]any{"amount": "1.50", "currency": "EUR"}}) {
		t.Fatalf("create call %+v body %v", f.calls[0], body)
	}
	if c := f.calls[2]; c.Op != OpUpdate || c.ID != "inv-1" || string(c.Body) != `{"status":"paid","total":{"amount":"2","currency":"EUR"}}` {
		t.Fatalf("update call %+v %s", c, c.Body)
	}
	if c := f.calls[3]; c.Op != OpDelete || c.ID != "inv-1" {
		t.Fatalf("delete call %+v", c)
	}
}

func TestExecuteBounds(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(0)
	for i := 0; i < 2100; i++ {
		f.data["invoices"] = append(f.data["invoices"], map[string]any{"id": "i" + strconv.Itoa(i), "customer_id": "c-1"})
	}
	// a relation of more than 10 pages of 200: an error, not unbounded calls
	r := run(t, s, f, nil, `{ customer(id: "c-1") { id invoices(first: 1) { totalCount } } }`, nil)
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "relation too large") || r.Errors[0].Code != contract.CodeBadRequest ||
		!reflect.DeepEqual(r.Errors[0].Path, []any{"customer", "invoices"}) || r.Calls != 1+maxRelationPages {
		t.Fatalf("calls %d errors %+v", r.Calls, r.Errors)
	}
	if string(r.Data) != `{"customer":{"id":"c-1","invoices":null}}` {
		t.Fatalf("data %s", r.Data)
	}

	// more than 10k objects: refused as a whole
	f = fixtures(0)
	for i := 0; i < 200; i++ {
		f.data["invoices"] = append(f.data["invoices"], map[string]any{"id": "i" + strconv.Itoa(i), "customer_id": "c-" + strconv.Itoa(i%2)})
	}
	r = run(t, s, f, nil, `{ invoices(first: 200) { nodes { customer { invoices(first: 200) { nodes { id } } } } } }`, nil)
	if string(r.Data) != "null" || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "too large") {
		t.Fatalf("data %.100s errors %+v", r.Data, r.Errors)
	}
}

// badFetcher answers garbage.
type badFetcher struct{ data json.RawMessage }

func (b badFetcher) Fetch(_ context.Context, calls []Call) []Result {
	if len(calls) > 1 {
		return nil // the wrong number of results
	}
	return []Result{{Data: b.data}}
}

func TestExecuteBadBackendData(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	for _, data := range []string{`{"id": `, `[1,2]`, `"x"`, `{"id":{"a":1},"total":[1],"customer_id":{}}`, `{"id":"1","total":{"amount":[]}}`} {
		p, _ := s.Prepare(&Request{Query: `{ invoice(id: "1") { id number total { amount } customer { id } } invoices { nodes { id } } }`}, Limits{})
		r := s.Execute(context.Background(), p, badFetcher{json.RawMessage(data)}, nil)
		if len(r.Errors) == 0 || !json.Valid(r.Data) {
			t.Fatalf("%s: data %s errors %+v", data, r.Data, r.Errors)
		}
		for _, e := range r.Errors {
			if e.Code == contract.CodeInternal {
				t.Fatalf("%s: an internal error: %+v", data, *e)
			}
		}
	}
}

// panicFetcher panics: Execute answers INTERNAL instead of crashing.
type panicFetcher struct{}

func (panicFetcher) Fetch(context.Context, []Call) []Result { panic("boom") }

func TestExecuteRecoversAndStops(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	r := run(t, s, panicFetcher{}, nil, `{ invoices { nodes { id } } }`, nil)
	if string(r.Data) != "null" || len(r.Errors) != 1 || r.Errors[0].Code != contract.CodeInternal {
		t.Fatalf("data %s errors %+v", r.Data, r.Errors)
	}

	// a request that ended makes no calls
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, _ := s.Prepare(&Request{Query: `{ invoices { nodes { id } } c: customer(id: "c-1") { id } }`}, Limits{})
	f := fixtures(3)
	r = s.Execute(ctx, p, f, nil)
	if f.fetches != 0 || r.Calls != 0 || string(r.Data) != `{"invoices":null,"c":null}` || len(r.Errors) != 2 || r.Errors[0].Code != contract.CodeUpstreamTimeout {
		t.Fatalf("fetches %d data %s errors %+v", f.fetches, r.Data, r.Errors)
	}
}

func TestExecuteLevelsAcrossBackends(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	f := fixtures(4)
	// four backends, two levels: invoices and products together, then
	// customers and inventory together
	r := run(t, s, f, nil, `{
		invoices(first: 4) { nodes { number customer { display_name } } }
		products { nodes { sku stock { stock } } }
	}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	if f.fetches != 2 || r.Calls != 4 {
		t.Fatalf("fetches %d calls %d", f.fetches, r.Calls)
	}
	backends := func(calls []Call) []string {
		var out []string
		for _, c := range calls {
			out = append(out, c.Backend)
		}
		return out
	}
	if got := backends(f.calls); !reflect.DeepEqual(got, []string{"invoices", "products", "customers", "inventory"}) {
		t.Fatalf("calls %v", got)
	}
	want := `{"invoices":{"nodes":[{"number":"N1","customer":{"display_name":"Customer, 1"}},{"number":"N2","customer":{"display_name":"Customer, 2"}},` +
		`{"number":"N3","customer":{"display_name":"Customer, 3"}},{"number":"N4","customer":{"display_name":"Customer, 4"}}]},` +
		`"products":{"nodes":[{"sku":"SKU1","stock":{"stock":10}},{"sku":"SKU2","stock":{"stock":20}},{"sku":"SKU3","stock":{"stock":30}}]}}`
	if string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
}

// One schema and one prepared operation serve concurrent executions (run
// with -race).
func TestExecuteConcurrent(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	p, errs := s.Prepare(&Request{Query: typicalQuery, Variables: map[string]any{"status": []any{"open"}}}, Limits{})
	if errs != nil {
		t.Fatal(errs[0].Message)
	}
	want := string(s.Execute(context.Background(), p, fixtures(20), nil).Data)
	done := make(chan string)
	for i := 0; i < 8; i++ {
		go func() { done <- string(s.Execute(context.Background(), p, fixtures(20), nil).Data) }()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
}
