package graphql

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/authsvc"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/rest" // the customers backend's filter_fields
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/graphql/apq"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testSDL is a small schema over two backends: invoices with a relation to
// customers.
const invoicesSDL = `
type Invoice { id: ID!, number: String!, customer_id: String, customer: Customer @join(from: "customer_id") }
extend type Query {
	invoice(id: ID!): Invoice
	invoices(first: Int = 20, after: String, sort: String): InvoiceConnection
}
input InvoiceInput { number: String! }
extend type Mutation { createInvoice(input: InvoiceInput!): Invoice @create }
`

const customersSDL = `
type Customer { id: ID!, display_name: String }
extend type Query { customers(first: Int = 20): CustomerConnection }
`

// backend is a fake REST backend recording what it was asked.
type backend struct {
	mu       sync.Mutex
	requests []*http.Request
	calls    atomic.Int64
	// answer, when set, answers instead of the fixtures (set it with setAnswer).
	answer func(w http.ResponseWriter, r *http.Request)
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	b.mu.Lock()
	b.requests = append(b.requests, r.Clone(context.Background()))
	answer := b.answer
	b.mu.Unlock()
	if answer != nil {
		answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/invoices":
		w.WriteHeader(201)
		fmt.Fprint(w, `{"id":"inv_new","number":"N-1","customer_id":null}`)
	case r.URL.Path == "/v1/invoices":
		w.Header().Set("X-Total-Count", "3")
		fmt.Fprint(w, `[{"id":"inv_1","number":"A-1","customer_id":"cus_1"},{"id":"inv_2","number":"A-2","customer_id":"cus_2"}]`)
	case r.URL.Path == "/v1/invoices/inv_1":
		fmt.Fprint(w, `{"id":"inv_1","number":"A-1","customer_id":"cus_1"}`)
	case strings.HasPrefix(r.URL.Path, "/v1/invoices/"):
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"code":"NOT_FOUND","message":"no such invoice"}}`)
	case r.URL.Path == "/v1/customers":
		w.Header().Set("X-Total-Count", "2")
		fmt.Fprint(w, `[{"id":"cus_1","display_name":"Blue"},{"id":"cus_2","display_name":"Copper"}]`)
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"code":"NOT_FOUND","message":"no such route"}}`)
	}
}

func (b *backend) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	b.mu.Lock()
	b.answer = f
	b.mu.Unlock()
}

func (b *backend) request(i int) *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests[i]
}

func (b *backend) all() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.requests...)
}

func (b *backend) last() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests[len(b.requests)-1]
}

// fakeQuota admits or refuses every charge, and records them.
type fakeQuota struct {
	refuse  *contract.Error
	charged atomic.Int64
}

func (q *fakeQuota) Usage(*http.Request) (*erpapp.QuotaUsage, error) { return nil, nil }
func (q *fakeQuota) Charge(w http.ResponseWriter, _ *http.Request, n int64) *contract.Error {
	if q.refuse != nil {
		return q.refuse
	}
	q.charged.Add(n)
	w.Header().Set("RateLimit", `"free";r=1;t=60`)
	return nil
}

type testEnv struct {
	h       *Handler
	backend *backend
	app     *erpapp.App
	signed  atomic.Int64
}

// newTestEnv provisions an erp app whose invoices and customers backends
// are one fake server, and an erp_graphql configured by h (nil: defaults).
func newTestEnv(t testing.TB, h *Handler, appExtra string) *testEnv {
	t.Helper()
	b := &backend{}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	sdl := func(s string) string { q, _ := json.Marshal(s); return string(q) }
	cfg := `{"backends": {
		"invoices": {"graphql": {"sdl": ` + sdl(invoicesSDL) + `}, "versions": {"v1": {"upstreams": ["` + srv.URL + `/v1"]}}},
		"customers": {"dialect": {"name": "rest", "filter_fields": ["id"]}, "graphql": {"sdl": ` + sdl(customersSDL) + `}, "versions": {"v1": {"upstreams": ["` + srv.URL + `/v1"]}}}
	}` + appExtra + `}`
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	app := new(erpapp.App)
	if err := json.Unmarshal([]byte(cfg), app); err != nil {
		t.Fatal(err)
	}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Cleanup() })
	if h == nil {
		h = &Handler{}
	}
	if err := h.setup(app); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	e := &testEnv{h: h, backend: b, app: app}
	h.signer.Sign = func(_ context.Context, a *authsvc.Assertion) (string, error) {
		e.signed.Add(1)
		return "assertion-for-" + a.Audience, nil
	}
	return e
}

// caller is a verified identity as erp_auth leaves it.
type caller struct {
	user, company, roles, scope, plan string
}

var alice = caller{"usr_alice", "acme", "admin", "invoices:read invoices:write customers:read", "standard"}

func request(c caller, method, target, contentType, body string) *http.Request {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	vars := map[string]any{contract.VarScope: c.scope, contract.VarCredential: &contract.Credential{ID: "token-" + c.user}}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.id", c.user)
	repl.Set("http.auth.user.company_id", c.company)
	repl.Set("http.auth.user.roles", c.roles)
	repl.Set("http.auth.user.plan", c.plan)
	return r
}

func post(c caller, query string) *http.Request {
	body, _ := json.Marshal(map[string]any{"query": query})
	return request(c, "POST", "/api/graphql", "application/json", string(body))
}

// gqlError is one error of an answer.
type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code    string         `json:"code"`
		Field   string         `json:"field"`
		Context map[string]any `json:"context"`
	} `json:"extensions"`
}

type answerDoc struct {
	Data       json.RawMessage `json:"data"`
	Errors     []gqlError      `json:"errors"`
	Extensions struct {
		Meta struct {
			RequestID string `json:"request_id"`
			Timestamp string `json:"timestamp"`
			Cost      *int   `json:"cost"`
			Calls     int    `json:"calls"`
		} `json:"meta"`
	} `json:"extensions"`
}

func (e *testEnv) serve(t *testing.T, r *http.Request) (*httptest.ResponseRecorder, answerDoc) {
	t.Helper()
	w := httptest.NewRecorder()
	if err := e.h.ServeHTTP(w, r, nil); err != nil {
		t.Fatalf("ServeHTTP returned %v: erp_graphql answers everything itself", err)
	}
	var d answerDoc
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, w.Body)
	}
	if enveloped, _ := caddyhttp.GetVar(r.Context(), contract.VarEnveloped).(bool); !enveloped {
		t.Fatal("erp.enveloped not set: erp_envelope would wrap the answer")
	}
	return w, d
}

func TestQueryThroughTheDialect(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, "")
	r := post(alice, `{ invoices(first: 2) { totalCount nodes { number customer { display_name } } } }`)
	r.Header.Set("Accept", "application/graphql-response+json")
	r.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	caddyhttp.SetVar(r.Context(), contract.VarRequestID, "req-1")
	w, d := e.serve(t, r)
	if w.Code != 200 || len(d.Errors) != 0 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := `{"invoices":{"totalCount":3,"nodes":[{"number":"A-1","customer":{"display_name":"Blue"}},{"number":"A-2","customer":{"display_name":"Copper"}}]}}`
	if string(d.Data) != want {
		t.Fatalf("data %s\nwant %s", d.Data, want)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/graphql-response+json") {
		t.Fatalf("Content-Type %q", ct)
	}
	m := d.Extensions.Meta
	if m.RequestID != "req-1" || w.Header().Get("X-Request-ID") != "req-1" || m.Timestamp == "" || m.Cost == nil || *m.Cost != 3 || m.Calls != 2 {
		t.Fatalf("meta %+v", m)
	}
	if n := e.backend.calls.Load(); n != 2 {
		t.Fatalf("%d backend calls, want 2 (one list, one batched relation)", n)
	}
	first := e.backend.request(0)
	if first.Method != "GET" || first.URL.Path != "/v1/invoices" {
		t.Fatalf("first call %s %s", first.Method, first.URL)
	}
	for _, br := range e.backend.all() {
		h := br.Header
		if h.Get("X-ERP-Company-ID") != "acme" || h.Get("X-ERP-User-ID") != "usr_alice" || h.Get("X-ERP-Roles") != "admin" ||
			h.Get("X-ERP-Scope") != alice.scope || h.Get("X-Request-ID") != "req-1" || h.Get("Accept") != "application/json" ||
			!strings.HasPrefix(h.Get("X-ERP-Assertion"), "assertion-for-") || h.Get("Authorization") != "" ||
			h.Get("Traceparent") != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Fatalf("backend saw headers %v", h)
		}
	}
	if aud := e.backend.request(1).Header.Get("X-ERP-Assertion"); aud != "assertion-for-customers" {
		t.Fatalf("the customers call carried %q", aud)
	}
}

func TestFieldErrorsAndRefusals(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, "")

	// a backend's 404: the field is null with its error, status 200
	w, d := e.serve(t, post(alice, `{ invoice(id: "inv_9") { number } }`))
	if w.Code != 200 || string(d.Data) != `{"invoice":null}` || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != "NOT_FOUND" {
		t.Fatalf("not found: %d %s", w.Code, w.Body)
	}

	// no permission: FORBIDDEN at the field, the backend is not called
	before := e.backend.calls.Load()
	reader := alice
	reader.scope = "customers:read"
	w, d = e.serve(t, post(reader, `{ invoices { nodes { number } } }`))
	if w.Code != 200 || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != "FORBIDDEN" ||
		d.Errors[0].Message != "missing permission invoices:read" || d.Errors[0].Extensions.Context["required"] != "invoices:read" {
		t.Fatalf("forbidden: %d %s", w.Code, w.Body)
	}
	if e.backend.calls.Load() != before {
		t.Fatal("a refused field called its backend")
	}
	// a mutation needs :write
	reader.scope = "invoices:read"
	_, d = e.serve(t, post(reader, `mutation { createInvoice(input: {number: "N-1"}) { id } }`))
	if len(d.Errors) != 1 || d.Errors[0].Extensions.Context["required"] != "invoices:write" || e.backend.calls.Load() != before {
		t.Fatalf("mutation without write: %+v", d.Errors)
	}
	w, d = e.serve(t, post(alice, `mutation { createInvoice(input: {number: "N-1"}) { id number } }`))
	if w.Code != 200 || len(d.Errors) != 0 || string(d.Data) != `{"createInvoice":{"id":"inv_new","number":"N-1"}}` {
		t.Fatalf("mutation: %d %s", w.Code, w.Body)
	}
	if last := e.backend.last(); last.Method != "POST" || last.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("create sent %s %v", last.Method, last.Header)
	}

	// parse and validation errors: 400, nothing called
	before = e.backend.calls.Load()
	for _, q := range []string{`{ invoices( `, `{ nosuchfield }`} {
		w, d = e.serve(t, post(alice, q))
		if w.Code != 400 || d.Data != nil || len(d.Errors) == 0 || d.Errors[0].Extensions.Code != "BAD_REQUEST" {
			t.Fatalf("%q: %d %s", q, w.Code, w.Body)
		}
	}
	if e.backend.calls.Load() != before {
		t.Fatal("a refused document called a backend")
	}
}

func TestBackendFailures(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Handler{MaxResponse: 64, Timeout: caddy.Duration(100_000_000)}, "")
	release := make(chan struct{})
	defer close(release)
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		code   string
	}{
		{"5xx", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }, contract.CodeUpstreamUnavailable},
		{"too large", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"inv_1","number":%q}`, strings.Repeat("x", 100))
		}, contract.CodeUpstreamUnavailable},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select { // answers only after the call gave up
			case <-r.Context().Done():
			case <-release:
			}
		}, contract.CodeUpstreamTimeout},
		{"invalid JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":`)
		}, contract.CodeUpstreamUnavailable},
	} {
		e.backend.setAnswer(tc.answer)
		w, d := e.serve(t, post(alice, `{ invoice(id: "inv_1") { number } }`))
		if w.Code != 200 || string(d.Data) != `{"invoice":null}` || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != tc.code {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
}

func TestQuotaCharge(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, "")
	q := &fakeQuota{}
	e.app.SetQuota(q)
	w, _ := e.serve(t, post(alice, `{ invoices(first: 5) { nodes { number customer { display_name } } } }`))
	if w.Code != 200 || q.charged.Load() != 6 || w.Header().Get("RateLimit") == "" {
		t.Fatalf("charged %d (want the cost, 6): %d %s", q.charged.Load(), w.Code, w.Body)
	}
	q.refuse = &contract.Error{Status: 429, Code: contract.CodeRateLimited, Message: "rate limit exceeded",
		Context: map[string]any{"retry_after": 12}, Header: http.Header{"Retry-After": {"12"}}}
	before := e.backend.calls.Load()
	w, d := e.serve(t, post(alice, `{ invoices { nodes { number } } }`))
	if w.Code != 429 || w.Header().Get("Retry-After") != "12" || d.Data != nil || len(d.Errors) != 1 ||
		d.Errors[0].Extensions.Code != contract.CodeRateLimited || d.Errors[0].Extensions.Context["retry_after"] != float64(12) {
		t.Fatalf("refused: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if e.backend.calls.Load() != before {
		t.Fatal("a refused operation called a backend")
	}
}

func TestPlanLimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Handler{Plans: map[string]*Plan{"free": {MaxCost: 5}, "gold": {MaxDepth: 2}}},
		`,"quota_overrides": {"globex": {"plan": "gold"}}`)
	deep := `{ invoices(first: 10) { nodes { customer { display_name } } } }` // cost 11, depth 4
	for _, tc := range []struct {
		name    string
		c       caller
		measure string
		limit   float64
	}{
		{"credential's plan", caller{"u", "initech", "", "invoices:read customers:read", "free"}, "cost", 5},
		{"no plan: the default", caller{"u", "initech", "", "invoices:read customers:read", ""}, "cost", 5},
		{"an unknown plan: the default", caller{"u", "initech", "", "invoices:read customers:read", "platinum"}, "cost", 5},
		{"the company's override wins", caller{"u", "globex", "", "invoices:read customers:read", "enterprise"}, "depth", 2},
	} {
		w, d := e.serve(t, post(tc.c, deep))
		if w.Code != 400 || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != "QUERY_TOO_COMPLEX" ||
			d.Errors[0].Extensions.Context["limit"] != tc.limit || d.Errors[0].Extensions.Context[tc.measure] == nil {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	if w, d := e.serve(t, post(caller{"u", "initech", "", "invoices:read customers:read", "standard"}, deep)); w.Code != 200 || len(d.Errors) != 0 {
		t.Fatalf("standard: %d %s", w.Code, w.Body)
	}
	if e.backend.calls.Load() != 2 {
		t.Fatalf("%d backend calls, want the 2 of the one operation that ran", e.backend.calls.Load())
	}
}

func TestHTTPShape(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil, "")
	get := func(params url.Values) *http.Request {
		return request(alice, "GET", "/api/graphql?"+params.Encode(), "", "")
	}
	w, d := e.serve(t, get(url.Values{"query": {`query Q($id: ID!) { invoice(id: $id) { number } }`}, "variables": {`{"id":"inv_1"}`}}))
	if w.Code != 200 || string(d.Data) != `{"invoice":{"number":"A-1"}}` || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w, d = e.serve(t, get(url.Values{"query": {`mutation { createInvoice(input: {number: "x"}) { id } }`}}))
	if w.Code != 405 || w.Header().Get("Allow") != "POST" || len(d.Errors) != 1 {
		t.Fatalf("mutation over GET: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w, d = e.serve(t, request(alice, "POST", "/api/graphql", "text/plain", `{"query":"{ __typename }"}`))
	if w.Code != 415 || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != "BAD_REQUEST" {
		t.Fatalf("text/plain: %d %s", w.Code, w.Body)
	}
	w, _ = e.serve(t, request(alice, "PUT", "/api/graphql", "application/json", `{}`))
	if w.Code != 405 || w.Header().Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d %v", w.Code, w.Header())
	}
	w, d = e.serve(t, request(alice, "POST", "/api/graphql", "application/json", `{"query": 1}`))
	if w.Code != 400 || len(d.Errors) != 1 {
		t.Fatalf("bad JSON: %d %s", w.Code, w.Body)
	}
	big := `{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", 200<<10) + `"}}`
	w, d = e.serve(t, request(alice, "POST", "/api/graphql", "application/json", big)) // standard: 32KiB×4+64KiB
	if w.Code != 413 || d.Errors[0].Extensions.Code != contract.CodePayloadTooLarge {
		t.Fatalf("large body: %d %s", w.Code, w.Body)
	}
	w, d = e.serve(t, request(alice, "POST", "/api/graphql", "application/json", `{}`))
	if w.Code != 400 || d.Errors[0].Extensions.Field != "query" {
		t.Fatalf("no query: %d %s", w.Code, w.Body)
	}
	w, d = e.serve(t, post(alice, `{ __type(name: "Invoice") { name } }`))
	if w.Code != 200 || string(d.Data) != `{"__type":{"name":"Invoice"}}` {
		t.Fatalf("introspection: %d %s", w.Code, w.Body)
	}
	w, _ = e.serve(t, post(caller{}, `{ __typename }`))
	if w.Code != 401 {
		t.Fatalf("no identity: %d", w.Code)
	}
}

func pqBody(hash, query string) string {
	m := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}}
	if query != "" {
		m["query"] = query
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestPersistedQueries(t *testing.T) {
	t.Parallel()
	trusted := `{ invoice(id: "inv_1") { number } }`
	manifest := t.TempDir() + "/manifest.json"
	writeManifest(t, manifest, map[string]string{apq.Hash(trusted): trusted})
	e := newTestEnv(t, &Handler{PersistedQueries: manifest, Plans: map[string]*Plan{"locked": {PersistedOnly: true}}}, "")
	if _, ok := e.h.pq.store.(*memoryStore); !ok {
		t.Fatalf("without Redis the store is the kept memory store, got %T", e.h.pq.store)
	}
	send := func(c caller, body string) (*httptest.ResponseRecorder, answerDoc) {
		return e.serve(t, request(c, "POST", "/api/graphql", "application/json", body))
	}
	q := `{ invoices(first: 1) { totalCount } }`
	h := apq.Hash(q)

	// Apollo's flow: the hash alone is unknown, then hash and query register it.
	w, d := send(alice, pqBody(h, ""))
	if w.Code != 200 || d.Data != nil || len(d.Errors) != 1 || d.Errors[0].Message != "PersistedQueryNotFound" || d.Errors[0].Extensions.Code != "NOT_FOUND" {
		t.Fatalf("unknown hash: %d %s", w.Code, w.Body)
	}
	if w, d = send(alice, pqBody(h, q)); w.Code != 200 || string(d.Data) != `{"invoices":{"totalCount":3}}` {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	if w, d = send(alice, pqBody(h, "")); w.Code != 200 || string(d.Data) != `{"invoices":{"totalCount":3}}` {
		t.Fatalf("by hash: %d %s", w.Code, w.Body)
	}
	// over GET too
	get := request(alice, "GET", "/api/graphql?"+url.Values{"extensions": {`{"persistedQuery":{"version":1,"sha256Hash":"` + h + `"}}`}}.Encode(), "", "")
	if w, d = e.serve(t, get); w.Code != 200 || string(d.Data) != `{"invoices":{"totalCount":3}}` {
		t.Fatalf("GET by hash: %d %s", w.Code, w.Body)
	}
	// a query that is not the hash's: refused, not stored
	other := `{ invoices(first: 2) { totalCount } }`
	if w, d = send(alice, pqBody(h, other)); w.Code != 400 || d.Errors[0].Extensions.Code != "BAD_REQUEST" {
		t.Fatalf("wrong hash: %d %s", w.Code, w.Body)
	}
	// a document that does not validate is not registered
	bad := `{ nosuchfield }`
	if w, _ = send(alice, pqBody(apq.Hash(bad), bad)); w.Code != 400 {
		t.Fatalf("invalid document: %d", w.Code)
	}
	if _, found, _ := e.h.pq.store.Get(context.Background(), apq.Hash(bad)); found {
		t.Fatal("an invalid document was registered")
	}
	// malformed extension
	if w, _ = send(alice, pqBody("ABC", "")); w.Code != 400 {
		t.Fatalf("bad hash syntax: %d", w.Code)
	}
	// the manifest's documents run by hash on every plan
	if w, d = send(alice, pqBody(apq.Hash(trusted), "")); w.Code != 200 || string(d.Data) != `{"invoice":{"number":"A-1"}}` {
		t.Fatalf("manifest: %d %s", w.Code, w.Body)
	}

	// a persisted-only plan: the manifest's hashes and nothing else
	locked := alice
	locked.plan = "locked"
	if w, d = send(locked, pqBody(apq.Hash(trusted), "")); w.Code != 200 || string(d.Data) != `{"invoice":{"number":"A-1"}}` {
		t.Fatalf("locked, manifest hash: %d %s", w.Code, w.Body)
	}
	before := e.backend.calls.Load()
	newQ := `{ invoices(first: 3) { totalCount } }`
	for name, body := range map[string]string{
		"query text":                 `{"query":"{ invoices { totalCount } }"}`,
		"an APQ-registered hash":     pqBody(h, ""),
		"hash and query":             pqBody(apq.Hash(newQ), newQ),
		"the manifest's query again": pqBody(apq.Hash(trusted), trusted),
	} {
		w, d := send(locked, body)
		if w.Code != 403 || len(d.Errors) != 1 || d.Errors[0].Extensions.Code != "FORBIDDEN" || d.Errors[0].Message != "this plan accepts only persisted queries" {
			t.Fatalf("locked, %s: %d %s", name, w.Code, w.Body)
		}
	}
	if e.backend.calls.Load() != before {
		t.Fatal("a persisted-only refusal called a backend")
	}
	if _, found, _ := e.h.pq.store.Get(context.Background(), apq.Hash(newQ)); found {
		t.Fatal("a persisted-only plan registered a query")
	}
}

func writeManifest(t *testing.T, path string, m map[string]string) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := osWriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

// TestProvisionErrors: a manifest with a wrong hash, and schemas that do not
// compose, fail the config.
func TestProvisionErrors(t *testing.T) {
	t.Parallel()
	manifest := t.TempDir() + "/bad.json"
	writeManifest(t, manifest, map[string]string{apq.Hash("{ a }"): "{ b }"})
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	app := new(erpapp.App)
	if err := json.Unmarshal([]byte(`{"backends": {"invoices": {"graphql": {"sdl": "type Invoice { id: ID! }\nextend type Query { invoice(id: ID!): Invoice }"}, "versions": {"v1": {"upstreams": ["http://127.0.0.1:9/v1"]}}}}}`), app); err != nil {
		t.Fatal(err)
	}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Cleanup()
	if err := (&Handler{PersistedQueries: manifest}).setup(app); err == nil {
		t.Fatal("a manifest whose hash is not its query's was accepted")
	}
	if err := (&Handler{DefaultPlan: "nosuch"}).setup(app); err == nil || !strings.Contains(err.Error(), "default_plan") {
		t.Fatalf("unknown default plan: %v", err)
	}
	bad := new(erpapp.App)
	if err := json.Unmarshal([]byte(`{"backends": {"invoices": {"graphql": {"sdl": "type Invoice { id: ID! "}, "versions": {"v1": {"upstreams": ["http://127.0.0.1:9/v1"]}}}}}`), bad); err != nil {
		t.Fatal(err)
	}
	if err := bad.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer bad.Cleanup()
	if err := (&Handler{}).setup(bad); err == nil || !strings.Contains(err.Error(), "do not compose") {
		t.Fatalf("a broken SDL: %v", err)
	}
}

// TestPersistedQueriesInRedis: with Redis in the erp app, the queries
// clients register are in Redis under the app's key prefix, so every
// instance (here: a second handler of another config) finds them.
func TestPersistedQueriesInRedis(t *testing.T) {
	t.Parallel()
	redisURL, prefix := testenv.Redis(t)
	extra := `,"redis": "` + redisURL + `", "key_prefix": "` + prefix + `"`
	one := newTestEnv(t, nil, extra)
	if _, ok := one.h.pq.store.(*apq.Redis); !ok {
		t.Fatalf("with Redis the store is Redis, got %T", one.h.pq.store)
	}
	q := `{ invoices(first: 1) { totalCount } }`
	h := apq.Hash(q)
	send := func(e *testEnv, body string) answerDoc {
		_, d := e.serve(t, request(alice, "POST", "/api/graphql", "application/json", body))
		return d
	}
	if d := send(one, pqBody(h, "")); len(d.Errors) != 1 || d.Errors[0].Message != "PersistedQueryNotFound" {
		t.Fatalf("unknown hash: %+v", d)
	}
	if d := send(one, pqBody(h, q)); string(d.Data) != `{"invoices":{"totalCount":3}}` {
		t.Fatalf("register: %+v", d)
	}
	two := newTestEnv(t, nil, extra)
	if d := send(two, pqBody(h, "")); string(d.Data) != `{"invoices":{"totalCount":3}}` {
		t.Fatalf("another instance, by hash: %+v %s", d.Errors, d.Data)
	}
}
