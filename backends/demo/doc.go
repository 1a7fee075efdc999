// Package demo is a small, deterministic, in-memory ERP used as the backend of
// Caddyfile.example, the edge's tests and the benchmark. It is plain net/http:
// New returns a *Server that is an http.Handler; the Caddy module erp_demo
// (caddymodules/demo) only wraps it.
//
// Each Server owns its own seeded data; nothing is shared between Servers.
// A public library, it must not import Caddy or anything under
// caddymodules/; of ours it imports only backends/edgeassert.
//
// # Companies and data
//
// Two companies are seeded the same way on every New, with no randomness:
//
//	acme    "Acme Corp"  EUR  120 invoices, 25 customers, 30 products
//	globex  "Globex"     USD   37 invoices,  8 customers, 12 products
//
// Every ERP request carries the edge assertion (X-ERP-Assertion, see
// backends/edgeassert), checked with WithAssertions: without a valid one for
// the request's backend → 401. The company comes from the assertion's cid
// alone; an X-ERP-Company-ID header is removed, never read. An unknown
// company → 404. A record of another company answers 404 exactly as an id
// that does not exist. Ids carry the company: inv_acme_0001, cus_acme_001,
// prd_acme_001.
//
// Each service checks the audience of the edge backend it is registered as
// (Backends; DefaultBackends are Caddyfile.example's names): invoices,
// customers and products for the REST collections of v1 and v2, ledger for
// the OData service at /odata/v1, inventory for the JSON-RPC catalogue at
// /jsonrpc.
//
// A server made without WithAssertions takes the company from the
// X-ERP-Company-ID header (missing → 400) from whoever connects: only for
// tests and benchmarks of the edge alone, on an address nobody else reaches.
//
// # Resources
//
// Paths are /{version}/{collection}[/{id}] with version v1 or v2 and
// collection customers, invoices or products; anything else is 404.
//
//	GET    /v1/invoices          list (bare JSON array)
//	POST   /v1/invoices          create → 201 + Location
//	GET    /v1/invoices/{id}     read
//	PUT    /v1/invoices/{id}     replace (required fields required)
//	PATCH  /v1/invoices/{id}     merge (only the fields sent)
//	DELETE /v1/invoices/{id}     → 204 (a customer with invoices → 409)
//
// v1 and v2 name fields differently:
//
//	invoice  v1 {id, number, customer_id, amount: 1234.5, currency, status, issued_at}
//	         v2 {id, number, customer_id, total: {amount: "1234.50", currency}, status, issue_date}
//	customer v1 {id, name, email, created_at}
//	         v2 {id, display_name, email, created}
//	product  v1 {id, sku, name, price: 9.99, currency, stock}
//	         v2 {id, sku, name, unit_price: {amount: "9.99", currency}, stock}
//
// Invoice statuses are draft, sent, paid, overdue; currencies EUR, USD, GBP.
// id, number and created_at/created are assigned by the server and ignored
// in request bodies; any other unknown field is a validation error.
//
// Lists take page (default 1), limit (default 50, at most 200), sort (a
// field or -field, comma-separated for several keys) and filters by exact
// match: id on every collection, status and customer_id on invoices,
// currency and sku on products. A filter parameter given several times
// matches any of its values (id=a&id=b: both records; how the edge's REST
// dialect sends filter=field:in:a,b). They answer with X-Total-Count,
// X-Page, X-Per-Page and an RFC 8288 Link header (first, prev, next, last)
// whose relative URIs keep the other query parameters.
//
// # Errors
//
// Every error is application/problem+json (RFC 9457) with type, title,
// status and detail; validation failures are 422 and list every bad field
// in errors[] as {field, code, message}. A malformed JSON body is 400, a
// body over 1 MiB is 413, a Content-Type other than application/json (or
// +json; none is accepted too) is 415, a wrong method is 405 with Allow.
//
// # Diagnostics
//
// Under /_demo/, with no assertion and no company (they hold no company's
// data and change nothing, and tests reach them through the edge to see
// what a backend receives), GET only:
//
//	/_demo/ping           {"ok":true}; the benchmark target
//	/_demo/slow?ms=N      sleeps N ms (at most 60000; stops when the request is cancelled), then {"slept_ms":N}
//	/_demo/big?mb=N       streams a valid JSON array of about N MiB (at most 1024), no Content-Length
//	/_demo/broken         200 application/json with the truncated body {"a": [1, 2,
//	/_demo/text           200 text/plain
//	/_demo/events         text/event-stream, 3 events flushed one by one (interval_ms, default 100)
//	/_demo/ws             RFC 6455 handshake (101), then echoes raw bytes until the client closes
//	/_demo/echo-headers   {"method", "host", "path", "query", "headers": {Canonical-Name: [values]}};
//	                      also at any path below it (/_demo/echo-headers/invoices)
//	/_demo/status?code=N  a problem+json answer with status N (200..599), for error-path tests
package demo
