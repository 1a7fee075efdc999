// Package graphql is the Caddy-free core of erpgate's GraphQL endpoint: it
// composes one schema from the SDL each registered backend declares, parses
// and validates operations (with github.com/vektah/gqlparser/v2), refuses
// those over a plan's limits before any backend is called, and executes the
// rest by planning batched calls to the backends through a Fetcher. The
// Caddy module erp_graphql (caddymodules/graphql) serves it over HTTP; the
// Fetcher it gives calls each backend through its dialect with the caller's
// verified identity. This package owns no state beyond an immutable Schema;
// it imports contract, gqlparser and the standard library, nothing of Caddy.
//
// # The schema a backend declares
//
// Each backend's `graphql { sdl … }` is a GraphQL SDL document. Compose adds
// the base every source may use:
//
//	schema { query: Query, mutation: Mutation }
//	type PageInfo { hasNextPage: Boolean!, hasPreviousPage: Boolean!, startCursor: String, endCursor: String }
//	directive @join(from: String!, to: String! = "id") on FIELD_DEFINITION
//	directive @create on FIELD_DEFINITION
//	directive @update on FIELD_DEFINITION
//	directive @delete on FIELD_DEFINITION
//
// and Query and Mutation types that sources extend (`extend type Query {…}`).
//
// Entities and value types. An object type a source defines with a field
// `id` is an entity of that source's backend: the backend serves it, and
// Compose generates its connection types:
//
//	type InvoiceConnection { edges: [InvoiceEdge!]!, nodes: [Invoice!]!, pageInfo: PageInfo!, totalCount: Int }
//	type InvoiceEdge { cursor: String!, node: Invoice! }
//
// An object type without `id` is a value type, read from its parent's JSON
// (Money of an invoice's `total`). Two sources may define the same value
// type if the definitions are identical; an entity has one backend. Field
// names are the backend's JSON member names as they appear in the envelope's
// `data` (snake_case in the demo); the backend's default version answers.
//
// Root fields, in `extend type Query` of backend B's source:
//   - `invoice(id: ID!): Invoice` — returns an entity of B, takes `id`: one
//     item call (GET /{id}); not found is null with a NOT_FOUND error.
//   - `invoices(first: Int = 20, after: String, filter: InvoiceFilter, sort: String): InvoiceConnection`
//     — returns a connection of an entity of B: one list call. `first` is
//     the page size (1..200), `after` an endCursor/cursor this endpoint
//     handed out, `sort` the envelope's sort ("-issue_date,number"), and
//     `filter` an input object whose fields are the backend's fields: a
//     scalar is `field:eq:value`, a list `field:in:v1,v2`.
//
// Mutations, in `extend type Mutation` of B's source, returning an entity
// of B (or Boolean/ID for @delete):
//   - `createInvoice(input: InvoiceInput!): Invoice @create` — POST
//   - `updateInvoice(id: ID!, input: InvoicePatch!): Invoice @update` — PATCH
//   - `deleteInvoice(id: ID!): Boolean @delete` — DELETE
//
// Relations: a field of an entity with `@join(from: "customer_id", to: "id")`
// and an entity type (of any backend) is the one object whose `to` equals
// the parent's `from`; with a connection or list type it is every such
// object (connections take first, filter and sort). For a whole level of
// parents the executor makes one batched list call per relation, with the
// filter `to:in:k1,k2,…` (chunked at MaxBatchKeys keys), never one call per
// parent.
//
// Compose checks these conventions and refuses a schema that breaks them
// (an entity defined twice, a value type defined differently, a @join
// whose from or to is not a field, root fields with other arguments, a
// relation taking `after`); a field or extension referencing a type no
// source defines (its backend is not registered) is dropped with a
// warning instead.
//
// # Execution
//
// Root query fields are fetched together (one Fetch); mutation fields one
// after the other, each with its relations. Cursors are opaque (base64url
// of the item's offset); a window that is not a whole backend page is read
// from one larger page when one of at most MaxFirst holds it, else from two.
// Relations are resolved a level at a time: every parent of one selected
// field together, at most MaxBatchKeys keys and 200 items per call,
// following at most 10 pages. A value that does not fit its type is null
// with an UPSTREAM_UNAVAILABLE error; a null where the type is non-null
// makes the nearest nullable parent null (spec). A response holds at most
// 10,000 objects.
//
// # Limits and cost
//
// Cost: every field that calls a backend (a root field, a relation) costs
// 1; the cost of what is selected under a connection or list field is
// multiplied by its `first` (its default when not given). Depth counts
// nested field selections (a root field is depth 1). Aliases count aliased
// fields. Size is the document's length in bytes. Prepare refuses an
// operation over any limit with QUERY_TOO_COMPLEX and context
// {"depth"|"cost"|"aliases"|"size": measured, "limit": n} before any call.
package graphql

import (
	"context"
	"encoding/json"
	"net/url"
)

// MaxBatchKeys is the most keys one batched relation call filters on.
const MaxBatchKeys = 100

// MaxFirst is the largest page a connection field takes.
const MaxFirst = 200

// Source is one backend's SDL.
type Source struct {
	// Backend serves the entities and root fields the SDL defines.
	Backend string
	SDL     string
}

// Limits are a plan's limits; zero means no limit.
type Limits struct {
	MaxDepth, MaxCost, MaxAliases, MaxSize int
}

// Request is a GraphQL-over-HTTP request.
type Request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// Location is a position in the document (1-based).
type Location struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Error is a GraphQL error. In the answer it is
// {message, locations?, path?, extensions: {code, field?, context?}}; Code
// is one of the envelope's error codes (contract.Code…).
type Error struct {
	Message   string
	Locations []Location
	Path      []any // string field names (response keys) and int list indexes
	Code      string
	Field     string
	Context   map[string]any
}

// Op is what a backend call does.
type Op uint8

// Backend call operations.
const (
	OpItem   Op = iota + 1 // GET {collection}/{id}
	OpList                 // GET {collection}?page=&limit=&sort=&filter=
	OpCreate               // POST {collection}, Body
	OpUpdate               // PATCH {collection}/{id}, Body
	OpDelete               // DELETE {collection}/{id}
)

// Call is one backend call the executor needs.
type Call struct {
	Backend string
	Op      Op
	ID      string     // OpItem, OpUpdate, OpDelete
	Query   url.Values // OpList: the envelope's page, limit, sort and filter
	Body    []byte     // OpCreate, OpUpdate: a JSON object
}

// Result is a backend call's answer, read into the envelope's parts.
type Result struct {
	// Data is the envelope's data: an object (item, create, update), an
	// array (list), or nil.
	Data json.RawMessage
	// Total is the list's total count, -1 when the backend gave none.
	Total   int64
	HasNext bool
	// Err is set when the call failed (a 4xx/5xx answer, a transport
	// failure, a refused permission): the executor makes the field null
	// with this error at its path.
	Err *Error
}

// Fetcher makes backend calls for one request, with the caller's identity.
type Fetcher interface {
	// Fetch runs the calls (concurrently, as it sees fit) and returns one
	// result per call, in order.
	Fetch(ctx context.Context, calls []Call) []Result
}

// Authorizer says whether the caller may read (write false) or write a
// backend; nil means yes. A refused field is null with the error.
type Authorizer func(backend string, write bool) *Error
