// Package graphql drives erp_graphql (POST/GET /api/graphql) through the
// running gateway binary on configs derived from Caddyfile.example: one
// query across the demo's REST, OData and JSON-RPC backends compared with
// REST, the batched calls counted at a proxy in front of the demo ERP, the
// per-plan limits and the cost charged to the rate limit, company
// isolation and scopes, persisted queries, a backend added through Caddy's
// admin API, GraphQL over HTTP, and the OpenAPI document and docs page.
package graphql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// endpoint is the GraphQL route of Caddyfile.example.
const endpoint = "/api/graphql"

// gqlError is one error of a GraphQL answer.
type gqlError struct {
	Message   string `json:"message"`
	Locations []struct {
		Line   int `json:"line"`
		Column int `json:"column"`
	} `json:"locations"`
	Path       []any `json:"path"`
	Extensions struct {
		Code    string         `json:"code"`
		Field   string         `json:"field"`
		Context map[string]any `json:"context"`
	} `json:"extensions"`
}

// answer is a decoded GraphQL-over-HTTP answer.
type answer struct {
	method string // of the request
	Status int
	Header http.Header
	Raw    []byte
	// Top holds the top-level members as they came.
	Top        map[string]json.RawMessage
	Data       json.RawMessage
	Errors     []gqlError
	Extensions struct {
		Meta struct {
			RequestID string `json:"request_id"`
			Timestamp string `json:"timestamp"`
			Cost      *int   `json:"cost"`
			Calls     *int   `json:"calls"`
		} `json:"meta"`
	}
}

// code is the first error's extensions.code, or "".
func (a *answer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	return a.Errors[0].Extensions.Code
}

// String is for failure messages.
func (a *answer) String() string {
	return fmt.Sprintf("%d %.1500s", a.Status, a.Raw)
}

// decode reads resp as a GraphQL answer and checks its shape: a JSON object
// with only data, errors and extensions at its top (never the envelope's
// success), errors each with a message and extensions.code, and
// extensions.meta with the request id and timestamp.
func decode(t testing.TB, resp *httpt.Response) *answer {
	t.Helper()
	a := &answer{method: resp.Request.Method, Status: resp.StatusCode, Header: resp.Header, Raw: resp.Body}
	if err := json.Unmarshal(resp.Body, &a.Top); err != nil {
		t.Fatalf("%s %s: not a JSON object (%v): %d %.500s", resp.Request.Method, resp.Request.URL, err, resp.StatusCode, resp.Body)
	}
	for k := range a.Top {
		if k != "data" && k != "errors" && k != "extensions" {
			t.Fatalf("%s %s: top-level member %q in a GraphQL answer: %.500s", resp.Request.Method, resp.Request.URL, k, resp.Body)
		}
	}
	var parts struct {
		Data       json.RawMessage `json:"data"`
		Errors     []gqlError      `json:"errors"`
		Extensions json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(resp.Body, &parts); err != nil {
		t.Fatalf("%s %s: bad GraphQL answer (%v): %.500s", resp.Request.Method, resp.Request.URL, err, resp.Body)
	}
	a.Data, a.Errors = parts.Data, parts.Errors
	if parts.Extensions != nil {
		if err := json.Unmarshal(parts.Extensions, &a.Extensions); err != nil {
			t.Fatalf("extensions: %v: %.500s", err, resp.Body)
		}
	}
	if _, ok := a.Top["errors"]; ok && len(a.Errors) == 0 {
		t.Fatalf("an empty errors list (the spec says: absent when none): %.500s", resp.Body)
	}
	for _, e := range a.Errors {
		if e.Message == "" || e.Extensions.Code == "" {
			t.Fatalf("an error without message or extensions.code: %.500s", resp.Body)
		}
	}
	if a.Extensions.Meta.RequestID == "" || a.Extensions.Meta.Timestamp == "" {
		t.Fatalf("no extensions.meta with request_id and timestamp: %.500s", resp.Body)
	}
	if got := resp.Header.Get("X-Request-ID"); got != "" && got != a.Extensions.Meta.RequestID {
		t.Fatalf("X-Request-ID %q but meta.request_id %q", got, a.Extensions.Meta.RequestID)
	}
	return a
}

// request is a GraphQL-over-HTTP request body.
type request struct {
	Query         string         `json:"query,omitempty"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
	Extensions    map[string]any `json:"extensions,omitempty"`
}

// post sends body (marshalled unless it is already []byte) as JSON to the
// endpoint, with token when not empty and the extra headers.
func post(t testing.TB, base, token string, body any, header map[string]string) *answer {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw = httpt.JSON(t, body)
	}
	h := map[string]string{"Content-Type": "application/json"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for k, v := range header {
		h[k] = v
	}
	return decode(t, httpt.Do(t, http.MethodPost, base+endpoint, raw, h))
}

// get sends a GET to the endpoint with the query parameters.
func get(t testing.TB, base, token string, params url.Values, header map[string]string) *answer {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for k, v := range header {
		h[k] = v
	}
	return decode(t, httpt.Get(t, base+endpoint+"?"+params.Encode(), h))
}

// query posts q with vars and requires a 200 without errors; it returns the
// answer's data.
func query(t testing.TB, base, token, q string, vars map[string]any) map[string]any {
	t.Helper()
	a := post(t, base, token, request{Query: q, Variables: vars}, nil)
	if a.Status != 200 || len(a.Errors) > 0 {
		t.Fatalf("query %q: %s", q, a)
	}
	return a.data(t)
}

// data decodes the answer's data as an object (numbers as float64).
func (a *answer) data(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Data, &m); err != nil || m == nil {
		t.Fatalf("data is not an object: %s", a)
	}
	return m
}

// at walks v along a path of object keys and list indexes.
func at(t testing.TB, v any, path ...any) any {
	t.Helper()
	cur := v
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not an object (%v)", path, cur, cur)
			}
			if cur, ok = m[k]; !ok {
				t.Fatalf("at %v: no member %q in %v", path, k, m)
			}
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: %v is not a list with index %d", path, cur, k)
			}
			cur = l[k]
		}
	}
	return cur
}

// list is at(…) that must be a list.
func list(t testing.TB, v any, path ...any) []any {
	t.Helper()
	l, ok := at(t, v, path...).([]any)
	if !ok {
		t.Fatalf("at %v: not a list: %v", path, at(t, v, path...))
	}
	return l
}

// obj is at(…) that must be an object.
func obj(t testing.TB, v any, path ...any) map[string]any {
	t.Helper()
	m, ok := at(t, v, path...).(map[string]any)
	if !ok {
		t.Fatalf("at %v: not an object: %v", path, at(t, v, path...))
	}
	return m
}

// rest reads path through the edge's REST route with token and returns the
// envelope's data, decoded (numbers as float64); it requires a 200.
func rest(t testing.TB, base, token, path string) any {
	t.Helper()
	resp := httpt.Get(t, base+path, demoauth.Bearer(token))
	env := resp.Envelope(t)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Body)
	}
	var v any
	if err := json.Unmarshal(env.Data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// restTotal is the pagination total of a REST list through the edge.
func restTotal(t testing.TB, base, token, path string) int64 {
	t.Helper()
	resp := httpt.Get(t, base+path, demoauth.Bearer(token))
	env := resp.Envelope(t)
	if resp.StatusCode != 200 || env.Pagination == nil {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Body)
	}
	return env.Pagination.Total
}

// restStatus is the status of GET path through the edge.
func restStatus(t testing.TB, base, token, path string) int {
	t.Helper()
	return httpt.Get(t, base+path, demoauth.Bearer(token)).StatusCode
}

// sameFields fails unless every key of want's selection (keys) has the same
// value in got and in want (REST's record); values compare as decoded JSON.
func sameFields(t testing.TB, what string, got, want map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		g, w := got[k], want[k]
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("%s: %s is %s over GraphQL, %s over REST", what, k, gj, wj)
		}
	}
}

// users are the demo's access tokens on one instance.
type users struct {
	aliceAcme   string // acme admin: every backend read and write
	aliceGlobex string // globex viewer: read only
	bobGlobex   string // globex accountant (plan free)
}

func login(t testing.TB, base string) users {
	t.Helper()
	return users{
		aliceAcme:   demoauth.Login(t, base, "alice@acme.test", "acme").Access,
		aliceGlobex: demoauth.Login(t, base, "alice@acme.test", "globex").Access,
		bobGlobex:   demoauth.Login(t, base, "bob@globex.test", "globex").Access,
	}
}

// counter is a reverse proxy in the test process in front of the demo ERP
// that counts the requests it forwards, by path, and keeps their URLs.
type counter struct {
	URL string // http://127.0.0.1:<port>
	mu  sync.Mutex
	got []*url.URL
}

// newCounter proxies to the demo ERP at target (host:port); the demo need
// not listen yet.
func newCounter(t testing.TB, target string) *counter {
	t.Helper()
	c := &counter{}
	to := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(to)
		c.mu.Lock()
		u := *r.In.URL
		c.got = append(c.got, &u)
		c.mu.Unlock()
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// reset forgets the requests counted so far.
func (c *counter) reset() {
	c.mu.Lock()
	c.got = nil
	c.mu.Unlock()
}

// requests are the URLs forwarded since the last reset whose path starts
// with prefix ("" for all).
func (c *counter) requests(prefix string) []*url.URL {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*url.URL
	for _, u := range c.got {
		if strings.HasPrefix(u.Path, prefix) {
			out = append(out, u)
		}
	}
	return out
}

// summary lists the counted requests, for failure messages.
func (c *counter) summary() string {
	var s []string
	for _, u := range c.requests("") {
		q := u.RawQuery
		if len(q) > 120 {
			q = q[:120] + "…"
		}
		s = append(s, u.Path+"?"+q)
	}
	return strings.Join(s, "\n")
}

// demoUpstream is how Caddyfile.example names the demo ERP's v2 REST base.
const demoUpstream = "version v2 http://{$ERP_DEMO_LISTEN:127.0.0.1:9001}/v2"

// throughCounter returns cfg (Caddyfile.example or derived from it) with
// the v2 upstream of each named backend replaced by the counter.
func throughCounter(t testing.TB, cfg string, c *counter, backends ...string) string {
	t.Helper()
	for _, b := range backends {
		start := strings.Index(cfg, "\t\tbackend "+b+" {\n")
		if start < 0 {
			t.Fatalf("the config has no backend %s", b)
		}
		i := strings.Index(cfg[start:], demoUpstream)
		if i < 0 {
			t.Fatalf("backend %s has no %q", b, demoUpstream)
		}
		i += start
		cfg = cfg[:i] + "version v2 " + c.URL + "/v2" + cfg[i+len(demoUpstream):]
	}
	return cfg
}

// startCounted starts Caddyfile.example (or cfg when not empty) with the
// named backends' v2 upstreams behind a counting proxy.
func startCounted(t testing.TB, cfg string, backends ...string) (*stacktest.Instance, *counter) {
	t.Helper()
	if cfg == "" {
		cfg = stacktest.ExampleConfig(t)
	}
	demo := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	c := newCounter(t, demo)
	in := stacktest.Start(t, stacktest.Options{Config: throughCounter(t, cfg, c, backends...), Env: map[string]string{"ERP_DEMO_LISTEN": demo}})
	return in, c
}

// ids are the values of key in a list of objects, in order.
func ids(t testing.TB, items []any, key string) []string {
	t.Helper()
	out := make([]string, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			t.Fatalf("item %d is %v", i, it)
		}
		s, _ := m[key].(string)
		out = append(out, s)
	}
	return out
}

// distinct is the sorted distinct values of ss.
func distinct(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
