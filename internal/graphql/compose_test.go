package graphql

import (
	"os"
	"strings"
	"testing"
)

// demoSources reads the demo's SDL (testdata, copied from Caddyfile.example)
// for the named backends.
func demoSources(t testing.TB, backends ...string) []Source {
	t.Helper()
	var out []Source
	for _, b := range backends {
		sdl, err := os.ReadFile("testdata/" + b + ".graphql")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Source{Backend: b, SDL: string(sdl)})
	}
	return out
}

var allDemo = []string{"invoices", "customers", "products", "ledger", "inventory"}

func demoSchema(t testing.TB) *Schema {
	t.Helper()
	s, warnings, err := Compose(demoSources(t, allDemo...))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	return s
}

func TestComposeDemo(t *testing.T) {
	t.Parallel()
	s := demoSchema(t)
	if got := strings.Join(s.Backends(), ","); got != "customers,inventory,invoices,ledger,products" {
		t.Fatalf("backends %s", got)
	}
	sdl := s.SDL()
	for _, want := range []string{
		"type InvoiceConnection {", "type CustomerEdge {", "invoices(first: Int = 20, after: String, filter: InvoiceFilter, sort: String): InvoiceConnection",
		"customer: Customer @join(from: \"customer_id\", to: \"id\")", "type PageInfo {", "createInvoice(input: InvoiceInput!): Invoice @create",
	} {
		if !strings.Contains(sdl, want) {
			t.Errorf("SDL lacks %q:\n%s", want, sdl)
		}
	}
	if s.AST().Types["Customer"].Fields.ForName("invoices") == nil {
		t.Error("Customer.invoices (invoices' extension) missing")
	}
}

func TestComposeWarnsAndDrops(t *testing.T) {
	t.Parallel()
	// invoices without customers: Invoice.customer and the extension of
	// Customer go; products without invoices: MoneyInput (invoices') is
	// missing, so ProductInput.unit_price and ProductPatch.unit_price go.
	s, warnings, err := Compose(demoSources(t, "invoices", "products", "inventory"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(warnings, "\n")
	for _, want := range []string{
		"graphql: backend invoices: Invoice.customer dropped",
		"graphql: backend invoices: extension of Customer dropped: no source defines Customer",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if len(warnings) != 2 {
		t.Errorf("want 2 warnings, got %d:\n%s", len(warnings), got)
	}
	if s.AST().Types["Invoice"].Fields.ForName("customer") != nil || s.AST().Types["Customer"] != nil {
		t.Error("dropped parts are still in the schema")
	}
	if s.AST().Types["Product"].Fields.ForName("stock") == nil {
		t.Error("Product.stock (inventory is registered) went")
	}

	_, warnings, err = Compose(demoSources(t, "products"))
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(warnings, "\n")
	for _, want := range []string{
		"graphql: backend products: Product.stock dropped",
		"graphql: backend products: ProductInput.unit_price dropped",
		"graphql: backend products: ProductPatch.unit_price dropped",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
}

func TestComposeErrors(t *testing.T) {
	t.Parallel()
	const customer = `type Customer { id: ID!, name: String }
extend type Query { customer(id: ID!): Customer }`
	cases := []struct {
		name    string
		sources []Source
		want    string
	}{
		{"duplicate entity", []Source{{"a", customer}, {"b", customer}}, "entity Customer is defined by backends a and b"},
		{"conflicting value types", []Source{
			{"a", customer + "\ntype Money { amount: String }\nextend type Customer { credit: Money }"},
			{"b", "type Money { amount: Float }\ntype Order { id: ID!, total: Money }\nextend type Query { order(id: ID!): Order }"},
		}, "type Money is defined differently by backends a and b"},
		{"identical value types are fine", []Source{
			{"a", customer + "\n\"money\"\ntype Money { amount: String }\nextend type Customer { credit: Money }"},
			{"b", "type Money { amount: String }\ntype Order { id: ID!, total: Money }\nextend type Query { order(id: ID!): Order }"},
		}, ""},
		{"bad join target field", []Source{
			{"a", customer},
			{"b", "type Order { id: ID!, customer_id: ID, customer: Customer @join(from: \"customer_id\", to: \"nope\") }\nextend type Query { order(id: ID!): Order }"},
		}, `Order.customer: @join to "nope" is not a field of Customer`},
		{"bad join source field", []Source{
			{"a", customer},
			{"b", "type Order { id: ID!, customer: Customer @join(from: \"customer_id\") }\nextend type Query { order(id: ID!): Order }"},
		}, `Order.customer: @join from "customer_id" is not a field of Order`},
		{"join with after", []Source{
			{"a", customer + "\nextend type Customer { orders(first: Int, after: String): OrderConnection @join(from: \"id\", to: \"customer_id\") }"},
			{"b", "type Order { id: ID!, customer_id: ID }\nextend type Query { order(id: ID!): Order }"},
		}, "Customer.orders: argument after"},
		{"item field args", []Source{{"a", `type Customer { id: ID! }
extend type Query { customer(key: ID!): Customer }`}}, "Query.customer: an item field takes exactly id: ID!"},
		{"connection field args", []Source{{"a", `type Customer { id: ID! }
extend type Query { customers(first: Int, page: Int): CustomerConnection }`}}, "Query.customers: argument page"},
		{"first default out of range", []Source{{"a", `type Customer { id: ID! }
extend type Query { customers(first: Int = 500): CustomerConnection }`}}, "first's default must be 1..200"},
		{"root field of another backend", []Source{{"a", customer}, {"b", "extend type Query { client(id: ID!): Customer }"}}, "backend b: Query.client returns Customer, not an entity of b"},
		{"mutation without directive", []Source{{"a", customer + "\ninput CustomerInput { name: String }\nextend type Mutation { createCustomer(input: CustomerInput!): Customer }"}}, "needs exactly one of @create, @update, @delete"},
		{"delete returning an entity", []Source{{"a", customer + "\nextend type Mutation { deleteCustomer(id: ID!): Customer @delete }"}}, "a @delete returns Boolean or ID"},
		{"generated name taken", []Source{{"a", customer + "\ntype CustomerConnection { n: Int }"}}, "defines CustomerConnection, which Compose generates"},
		{"interfaces", []Source{{"a", customer + "\ninterface Node { id: ID! }"}}, "Node is a INTERFACE"},
		{"no root field", []Source{{"a", "type Customer { id: ID! }"}}, "no source declares a root query field"},
		{"syntax", []Source{{"a", "type Customer {"}}, "graphql: backend a:"},
		{"plain field with arguments", []Source{{"a", "type Customer { id: ID!, name(lang: String): String }\nextend type Query { customer(id: ID!): Customer }"}}, "Customer.name takes arguments but is no relation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Compose(c.sources)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

// The composed schema does not depend on the sources' order.
func TestComposeDeterministic(t *testing.T) {
	t.Parallel()
	a, wa, err := Compose(demoSources(t, "invoices", "customers", "products"))
	if err != nil {
		t.Fatal(err)
	}
	b, wb, err := Compose(demoSources(t, "products", "customers", "invoices"))
	if err != nil {
		t.Fatal(err)
	}
	if a.SDL() != b.SDL() || strings.Join(wa, "\n") != strings.Join(wb, "\n") {
		t.Fatalf("order matters:\n%s\n----\n%s", a.SDL(), b.SDL())
	}
	if _, _, err := Compose(append(demoSources(t, "customers"), demoSources(t, "customers")...)); err == nil || !strings.Contains(err.Error(), "two sources") {
		t.Fatalf("a backend twice: %v", err)
	}
}
