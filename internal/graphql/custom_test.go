package graphql

import (
	"reflect"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

// A schema with what the demo does not use: list relations, value lists,
// enums, custom scalars, booleans, a @delete returning the ID.
const ordersSDL = `
enum Status { OPEN PAID }
scalar JSON
type Line { sku: String!, qty: Int }
type Order {
	id: ID!
	status: Status
	paid: Boolean
	extra: JSON
	lines: [Line!]
	tags: [String]
	parts(first: Int): [Part!] @join(from: "id", to: "order_id")
}
input OrderFilter { status: [Status!], id: ID, where: OrderWhere }
input OrderWhere { a: String }
input OrderInput { status: Status }
extend type Query {
	order(id: ID!): Order
	orders(first: Int, after: String, filter: OrderFilter): OrderConnection
}
extend type Mutation {
	removeOrder(id: ID!): ID! @delete
}
`

const partsSDL = `
type Part { id: ID!, order_id: Int, name: String }
extend type Query { part(id: ID!): Part }
`

func ordersSchema(t *testing.T) *Schema {
	t.Helper()
	s, w, err := Compose([]Source{{Backend: "orders", SDL: ordersSDL}, {Backend: "parts", SDL: partsSDL}})
	if err != nil || len(w) > 0 {
		t.Fatalf("%v %v", err, w)
	}
	return s
}

func ordersFetcher() *fakeFetcher {
	f := &fakeFetcher{data: map[string][]map[string]any{}, fail: map[string]*Error{}}
	f.data["orders"] = []map[string]any{
		{"id": 1, "status": "OPEN", "paid": false, "extra": map[string]any{"x": []any{1, "y"}}, "lines": []any{map[string]any{"sku": "a", "qty": 2}}, "tags": []any{"t1", nil}},
		{"id": 2, "status": "LOST", "paid": "no", "lines": []any{map[string]any{"qty": 1}}, "tags": "x"},
	}
	for i, o := range []int{1, 1, 1, 2} {
		f.data["parts"] = append(f.data["parts"], map[string]any{"id": "p" + string(rune('0'+i)), "order_id": o, "name": "part"})
	}
	return f
}

func TestExecuteCustomSchema(t *testing.T) {
	t.Parallel()
	s := ordersSchema(t)
	f := ordersFetcher()
	r := run(t, s, f, nil, `{ orders { nodes { id status paid extra lines { sku qty } tags parts(first: 2) { name } } } }`, nil)
	want := `{"orders":{"nodes":[` +
		`{"id":"1","status":"OPEN","paid":false,"extra":{"x":[1,"y"]},"lines":[{"sku":"a","qty":2}],"tags":["t1",null],"parts":[{"name":"part"},{"name":"part"}]},` +
		`{"id":"2","status":null,"paid":null,"extra":null,"lines":null,"tags":null,"parts":[{"name":"part"}]}]}}`
	if string(r.Data) != want {
		t.Fatalf("data %s\nwant %s", r.Data, want)
	}
	var msgs []string
	for _, e := range r.Errors {
		msgs = append(msgs, e.Message)
	}
	wantMsgs := []string{
		"the backend's value of Order.status is not a Status",
		"the backend's value of Order.paid is not a Boolean",
		"the backend's value of Order.tags is not a list",
		"the backend gave no value for Line.sku",
	}
	if !reflect.DeepEqual(msgs, wantMsgs) {
		t.Fatalf("errors %q", msgs)
	}
	if r.Errors[3].Path[3] != "lines" || r.Errors[3].Path[4] != 0 {
		t.Fatalf("path %v", r.Errors[3].Path)
	}
	// numeric join keys in `in`, bare
	if got := f.calls[1].Query["filter"]; !reflect.DeepEqual(got, []string{"order_id:in:1,2"}) || f.calls[1].Query.Get("limit") != "200" {
		t.Fatalf("parts query %v", f.calls[1].Query)
	}
}

func TestExecuteCustomArguments(t *testing.T) {
	t.Parallel()
	s := ordersSchema(t)

	f := ordersFetcher()
	r := run(t, s, f, nil, `{ orders(filter: {status: [OPEN, PAID], id: 1}) { totalCount } o: order(id: 1) { id } }`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%+v", *r.Errors[0])
	}
	if got := f.calls[0].Query["filter"]; !reflect.DeepEqual(got, []string{`status:in:"OPEN","PAID"`, "id:eq:1"}) {
		t.Fatalf("filter %q", got)
	}
	if f.calls[1].ID != "1" || f.calls[0].Query.Get("limit") != "50" {
		t.Fatalf("calls %+v", f.calls)
	}

	f = ordersFetcher()
	r = run(t, s, f, nil, `{ orders(filter: {where: {a: "x"}}) { totalCount } }`, nil)
	if len(f.calls) != 0 || len(r.Errors) != 1 || r.Errors[0].Code != contract.CodeBadRequest || r.Errors[0].Field != "filter.where" {
		t.Fatalf("calls %d errors %+v", len(f.calls), r.Errors)
	}

	f = ordersFetcher()
	p, errs := s.Prepare(&Request{Query: `mutation { removeOrder(id: "7") }`}, Limits{})
	if errs != nil || p.Kind() != "mutation" || !reflect.DeepEqual(p.Backends(), map[string]bool{"orders": true}) {
		t.Fatalf("%v %+v", errs, p)
	}
	r = run(t, s, f, nil, `mutation { removeOrder(id: "7") }`, nil)
	if string(r.Data) != `{"removeOrder":"7"}` || f.calls[0].Op != OpDelete {
		t.Fatalf("data %s calls %+v", r.Data, f.calls)
	}
	if p, _ := s.Prepare(&Request{Query: `{ __typename }`}, Limits{}); p.Kind() != "query" {
		t.Fatalf("kind %s", p.Kind())
	}

	// a failed delete: null, and a non-null field's null reaches data
	f.fail["orders"] = &Error{Message: "gone", Code: contract.CodeNotFound}
	r = run(t, s, f, nil, `mutation { removeOrder(id: "7") }`, nil)
	if string(r.Data) != `null` || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "gone") {
		t.Fatalf("data %s errors %+v", r.Data, r.Errors)
	}
}
