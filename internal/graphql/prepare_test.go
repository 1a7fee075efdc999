package graphql

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

const typicalQuery = `query Invoices($status: [String!]) {
  invoices(first: 50, filter: {status: $status}) {
    nodes { ...inv }
    pageInfo { hasNextPage endCursor }
  }
}
fragment inv on Invoice { number total { amount } customer { display_name } }`

func TestPrepareMeasures(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	cases := []struct {
		name                 string
		query                string
		vars                 map[string]any
		depth, cost, aliases int
		backends             map[string]bool
	}{
		// invoices (1) + 50 × customer (1)
		{"typical", typicalQuery, map[string]any{"status": []any{"open"}}, 4, 51, 0, map[string]bool{"invoices": false, "customers": false}},
		// default first (20) from the SDL; customer's invoices take first
		// 5 but select nothing that calls
		{"nested", `{ invoices { nodes { customer { invoices(first: 5) { nodes { number } } } } } }`, nil, 6, 1 + 20*(1+1+5*0), 0, map[string]bool{"invoices": false, "customers": false}},
		{"first from a variable", `query($n: Int) { customers(first: $n) { nodes { invoices { totalCount } } } }`, map[string]any{"n": 3}, 4, 1 + 3, 0, map[string]bool{"invoices": false, "customers": false}},
		{"aliases", `{ a: invoice(id: "1") { n: number } b: invoice(id: "2") { number } }`, nil, 2, 2, 3, map[string]bool{"invoices": false}},
		{"introspection is free", `{ __schema { types { name fields { name type { name } } } } __typename }`, nil, 1, 0, 0, map[string]bool{}},
		{"mutation writes", `mutation { createInvoice(input: {customer_id: "1", total: {amount: "1", currency: "EUR"}}) { id customer { id } } }`, nil, 3, 2, 0, map[string]bool{"invoices": true, "customers": false}},
		{"inline fragment", `{ product(id: "1") { ... on Product { stock { stock } } } }`, nil, 3, 2, 0, map[string]bool{"products": false, "inventory": false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, errs := s.Prepare(&Request{Query: c.query, Variables: c.vars}, Limits{})
			if errs != nil {
				t.Fatalf("errors: %+v", errs[0])
			}
			if p.Depth() != c.depth || p.Cost() != c.cost || p.Aliases() != c.aliases {
				t.Errorf("depth %d cost %d aliases %d, want %d %d %d", p.Depth(), p.Cost(), p.Aliases(), c.depth, c.cost, c.aliases)
			}
			if !reflect.DeepEqual(p.Backends(), c.backends) {
				t.Errorf("backends %v, want %v", p.Backends(), c.backends)
			}
		})
	}
}

func TestPrepareLimits(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	q := `{ x: invoices(first: 10) { nodes { customer { invoices(first: 10) { nodes { number } } } } } }`
	// depth 6, cost 1 + 10*(1 + 1 + 10*0) = 21, aliases 1, size len(q)
	cases := []struct {
		name string
		lim  Limits
		ctx  map[string]any
	}{
		{"size", Limits{MaxSize: 20, MaxDepth: 1}, map[string]any{"size": len(q), "limit": 20}},
		{"depth", Limits{MaxDepth: 5, MaxCost: 1}, map[string]any{"depth": 6, "limit": 5}},
		{"cost", Limits{MaxDepth: 6, MaxCost: 20}, map[string]any{"cost": 21, "limit": 20}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, errs := s.Prepare(&Request{Query: q}, c.lim)
			if p != nil || len(errs) != 1 {
				t.Fatalf("want one refusal, got %v %v", p, errs)
			}
			if errs[0].Code != contract.CodeQueryTooComplex || !reflect.DeepEqual(errs[0].Context, c.ctx) {
				t.Fatalf("got %s %v, want %v", errs[0].Code, errs[0].Context, c.ctx)
			}
		})
	}
	if _, errs := s.Prepare(&Request{Query: q}, Limits{MaxDepth: 6, MaxCost: 21, MaxAliases: 1, MaxSize: len(q)}); errs != nil {
		t.Fatalf("at the limits: %+v", errs[0])
	}
	_, errs := s.Prepare(&Request{Query: `{ a: invoice(id: "1") { id } b: invoice(id: "2") { id } }`}, Limits{MaxAliases: 1})
	if len(errs) != 1 || errs[0].Code != contract.CodeQueryTooComplex || !reflect.DeepEqual(errs[0].Context, map[string]any{"aliases": 2, "limit": 1}) {
		t.Fatalf("aliases: %+v", errs)
	}
}

func TestPrepareFragmentBomb(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	// each fragment spreads the next twice: 2^30 fields unfolded, measured
	// once per fragment
	var b strings.Builder
	b.WriteString("{ customer(id: \"1\") { ...f0 } }\n")
	for i := 0; i < 30; i++ {
		b.WriteString("fragment f" + strconv.Itoa(i) + " on Customer { id ...f" + strconv.Itoa(i+1) + " ...f" + strconv.Itoa(i+1) + " }\n")
	}
	b.WriteString("fragment f30 on Customer { invoices(first: 200) { nodes { customer { id } } } }\n")
	p, errs := s.Prepare(&Request{Query: b.String()}, Limits{})
	if errs != nil {
		t.Fatalf("%+v", errs[0])
	}
	if p.Cost() != capped {
		t.Fatalf("cost %d, want capped %d", p.Cost(), capped)
	}
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	cases := []struct {
		name, query, op string
		vars            map[string]any
		code            string
		msg             string
		loc             []Location
		field           string
	}{
		{"syntax", "{ invoices(", "", nil, contract.CodeBadRequest, "Expected Name", []Location{{1, 12}}, ""},
		{"unknown field", "{\n  nope }", "", nil, contract.CodeBadRequest, `Cannot query field "nope" on type "Query".`, []Location{{2, 3}}, ""},
		{"several operations", "query A { __typename } query B { __typename }", "", nil, contract.CodeBadRequest, "operationName must name one", nil, "operationName"},
		{"unknown operation", "query A { __typename }", "B", nil, contract.CodeBadRequest, "no operation named B", nil, "operationName"},
		{"subscription", "subscription { __typename }", "", nil, contract.CodeBadRequest, "", nil, ""},
		{"variable type", "query($n: Int) { customers(first: $n) { totalCount } }", "", map[string]any{"n": "x"}, contract.CodeValidationFailed, "cannot use string as Int", nil, "n"},
		{"missing variable", "query($id: ID!) { customer(id: $id) { id } }", "", nil, contract.CodeValidationFailed, "must be defined", nil, "id"},
		{"empty", "  ", "", nil, contract.CodeBadRequest, "no query", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, errs := s.Prepare(&Request{Query: c.query, OperationName: c.op, Variables: c.vars}, Limits{})
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			e := errs[0]
			if e.Code != c.code || !strings.Contains(e.Message, c.msg) || (c.loc != nil && !reflect.DeepEqual(e.Locations, c.loc)) || e.Field != c.field {
				t.Fatalf("got %+v", e)
			}
		})
	}
	// a subscription is refused even though the schema has none: either
	// the validator or Prepare says BAD_REQUEST
}
