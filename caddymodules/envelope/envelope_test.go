package envelope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/erpgate/erpgate/internal/clientheaders"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
)

type envelopeDoc struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Meta    struct {
		RequestID string `json:"request_id"`
		CompanyID string `json:"company_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
	Pagination *struct {
		Page, Limit int
		Total       int64
		HasNext     bool `json:"has_next"`
	} `json:"pagination"`
	Errors []struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Context map[string]any `json:"context"`
	} `json:"errors"`
}

func newRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r)
	return r
}

func newHandler(maxBuffer int64) *Handler {
	strip, err := clientheaders.New(clientheaders.Edge, clientheaders.Default)
	if err != nil {
		panic(err)
	}
	return &Handler{MaxBuffer: maxBuffer, logger: zap.NewNop(), strip: strip}
}

func serve(t *testing.T, h *Handler, r *http.Request, next caddyhttp.HandlerFunc) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, next)
	return w, err
}

func decode(t *testing.T, body []byte) envelopeDoc {
	t.Helper()
	var d envelopeDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("not valid JSON (%v): %.300s", err, body)
	}
	return d
}

func TestWrapsJSON(t *testing.T) {
	t.Parallel()
	r := newRequest("GET", "/v1/invoices?page=1&limit=2")
	r.Header.Set("Accept-Encoding", "gzip")
	w, err := serve(t, newHandler(1<<20), r, func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Error("Accept-Encoding reached the backend")
		}
		if r.Header.Get(contract.HeaderRequestID) == "" {
			t.Error("no request id sent upstream")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "13")
		w.Header().Set("X-Total-Count", "5")
		w.Header().Set("ETag", `"abc"`)
		_, _ = io.WriteString(w, `[{"a":1},{}]`+"\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, w.Body.Bytes())
	if !d.Success || string(d.Data) != `[{"a":1},{}]` || d.Pagination == nil || d.Pagination.Total != 5 || !d.Pagination.HasNext {
		t.Fatalf("unexpected envelope %s", w.Body.String())
	}
	if w.Header().Get("X-Request-ID") != d.Meta.RequestID || w.Header().Get("ETag") != `"abc"` { // the resource's version is kept
		t.Fatalf("headers %v", w.Header())
	}
	if w.Header().Get("Content-Length") != fmt.Sprint(w.Body.Len()) {
		t.Fatalf("Content-Length %s for %d bytes", w.Header().Get("Content-Length"), w.Body.Len())
	}
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, ct string
		status           int
		upgrade          bool
		enveloped        bool
	}{
		{"text", "GET", "text/plain", 200, false, false},
		{"no content type", "GET", "", 200, false, false},
		{"head", "HEAD", "application/json", 200, false, false},
		{"not modified", "GET", "application/json", 304, false, false},
		{"sse", "GET", "text/event-stream", 200, false, false},
		{"upgrade", "GET", "application/json", 200, true, false},
		{"already enveloped", "GET", "application/json", 200, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRequest(tc.method, "/x")
			if tc.upgrade {
				r.Header.Set("Connection", "keep-alive, Upgrade")
				r.Header.Set("Upgrade", "websocket")
			}
			w, err := serve(t, newHandler(1<<20), r, func(w http.ResponseWriter, r *http.Request) error {
				if tc.enveloped {
					caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
				}
				if tc.ct != "" {
					w.Header().Set("Content-Type", tc.ct)
				}
				w.WriteHeader(tc.status)
				if tc.status != 304 && tc.method != "HEAD" {
					_, _ = io.WriteString(w, "raw")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status {
				t.Fatalf("status %d", w.Code)
			}
			if tc.status != 304 && tc.method != "HEAD" && w.Body.String() != "raw" {
				t.Fatalf("body changed: %q", w.Body.String())
			}
		})
	}
}

func TestUpstreamErrorKeepsStatusAndFields(t *testing.T) {
	t.Parallel()
	w, err := serve(t, newHandler(1<<20), newRequest("POST", "/v1/invoices"), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(422)
		_, _ = io.WriteString(w, `{"title":"Validation failed","status":422,"errors":[{"field":"amount","code":"must_be_positive","message":"amount must be greater than 0"}]}`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, w.Body.Bytes())
	if w.Code != 422 || d.Success || string(d.Data) != "null" || len(d.Errors) != 1 || d.Errors[0].Code != "VALIDATION_FAILED" {
		t.Fatalf("unexpected %d %s", w.Code, w.Body.String())
	}
}

func TestStreamsLargeJSON(t *testing.T) {
	t.Parallel()
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprint("broken=", broken), func(t *testing.T) {
			t.Parallel()
			w, err := serve(t, newHandler(4096), newRequest("GET", "/big"), func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "[")
				for i := range 1000 {
					if i > 0 {
						_, _ = io.WriteString(w, ",")
					}
					_, _ = io.WriteString(w, `{"n":1,"s":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
				}
				if !broken {
					_, _ = io.WriteString(w, "]")
				} else {
					_, _ = io.WriteString(w, `,{"n":`)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			d := decode(t, w.Body.Bytes())
			if d.Success == broken || d.Meta.RequestID == "" {
				t.Fatalf("success=%v for broken=%v", d.Success, broken)
			}
			var items []map[string]any
			// a broken tail is closed, not dropped: the half object becomes {"n":null}
			if err := json.Unmarshal(d.Data, &items); err != nil || len(items) < 1000 {
				t.Fatalf("data: %d items, %v", len(items), err)
			}
			if broken && (len(d.Errors) != 1 || d.Errors[0].Code != "UPSTREAM_UNAVAILABLE") {
				t.Fatalf("errors %+v", d.Errors)
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	_, err := serve(t, newHandler(1<<20), newRequest("GET", "/"), func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"half":`)
		panic("boom")
	})
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 500 {
		t.Fatalf("want a 500 handler error, got %v", err)
	}
}

func TestErrorRendering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		header string
	}{
		{"not found", caddyhttp.Error(404, errors.New("x")), 404, "NOT_FOUND", ""},
		{"bad gateway", caddyhttp.Error(502, errors.New("dial tcp: refused")), 502, "UPSTREAM_UNAVAILABLE", ""},
		{"timeout", caddyhttp.Error(504, errors.New("timeout")), 504, "UPSTREAM_TIMEOUT", ""},
		{"too large", caddyhttp.Error(502, fmt.Errorf("proxy: %w", &http.MaxBytesError{Limit: 10})), 413, "PAYLOAD_TOO_LARGE", ""},
		{"coded", caddyhttp.Error(403, &contract.Error{Status: 403, Code: "COMPANY_MISMATCH", Message: "other company", Header: http.Header{"Www-Authenticate": {`Bearer error="x"`}}}), 403, "COMPANY_MISMATCH", `Bearer error="x"`},
		{"plain", errors.New("whatever"), 500, "INTERNAL", ""},
		// internal/depfail: a dependency that dropped is 503 with
		// Retry-After; a backend's 502 stays a 502.
		{"dependency dropped", fmt.Errorf("store: %w", io.ErrUnexpectedEOF), 503, "SERVICE_UNAVAILABLE", ""},
		{"dependency timed out", caddyhttp.Error(500, fmt.Errorf("query: %w", context.DeadlineExceeded)), 503, "SERVICE_UNAVAILABLE", ""},
		{"503 without Retry-After", caddyhttp.Error(503, errors.New("not ready")), 503, "SERVICE_UNAVAILABLE", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRequest("GET", "/")
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ErrorCtxKey, tc.err))
			w, err := serve(t, newHandler(1<<20), r, nil)
			if err != nil {
				t.Fatal(err)
			}
			d := decode(t, w.Body.Bytes())
			if w.Code != tc.status || d.Success || len(d.Errors) != 1 || d.Errors[0].Code != tc.code {
				t.Fatalf("got %d %s", w.Code, w.Body.String())
			}
			if strings.Contains(w.Body.String(), "dial tcp") {
				t.Fatal("internal error text leaked")
			}
			if w.Header().Get("WWW-Authenticate") != tc.header {
				t.Fatalf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if ra := w.Header().Values("Retry-After"); (tc.status == 503) != (len(ra) == 1 && ra[0] == depfail.RetryAfter) {
				t.Fatalf("status %d with Retry-After %q", w.Code, ra)
			}
		})
	}
}

// TestProviderRefusalStatus: a provider's refusal that is not a 401 (a
// credential that could not be checked) keeps its status and its
// Retry-After, once.
func TestProviderRefusalStatus(t *testing.T) {
	t.Parallel()
	r := newRequest("GET", "/")
	caddyhttp.SetVar(r.Context(), contract.VarAuthFailure, depfail.Error("token verification is temporarily unavailable"))
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ErrorCtxKey, caddyhttp.Error(401, errors.New("not authenticated"))))
	w, err := serve(t, newHandler(1<<20), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, w.Body.Bytes())
	if w.Code != 503 || len(d.Errors) != 1 || d.Errors[0].Code != "SERVICE_UNAVAILABLE" {
		t.Fatalf("got %d %s", w.Code, w.Body.String())
	}
	if ra := w.Header().Values("Retry-After"); len(ra) != 1 || ra[0] != depfail.RetryAfter {
		t.Fatalf("Retry-After %q", ra)
	}
	if w.Header().Get("WWW-Authenticate") != "" {
		t.Fatal("a 503 asks for credentials")
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	body := []byte(`[{"id":"inv_acme_0001","number":"ACME-0001","customer_id":"cus_acme_001","amount":1234.5,"currency":"EUR","status":"paid","issued_at":"2026-01-05"}]`)
	h := newHandler(4 << 20)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Total-Count", "120")
		_, _ = w.Write(body)
		return nil
	})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/v1/invoices?page=1&limit=1", nil)
			r.Header.Set("X-Request-ID", "0f8fad5b-d9cb-469f-a165-70867728950e")
			r = r.WithContext(context.WithValue(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, r, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestStripsIdentityHeaders: the next handler never sees a client's
// identity-like header, in any spelling, even on a protocol upgrade.
func TestStripsIdentityHeaders(t *testing.T) {
	t.Parallel()
	for _, upgrade := range []bool{false, true} {
		r := newRequest(http.MethodGet, "/api/v1/auth/me")
		for _, k := range []string{"X-User-Id", "X_user_id", "X-Erp-Assertion", "X-Auth-Request-User", "Remote-User"} {
			r.Header[k] = []string{"root"}
		}
		r.Header.Set("X-Forwarded-For", "10.0.0.1")
		if upgrade {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}
		var seen http.Header
		_, err := serve(t, newHandler(1<<20), r, func(w http.ResponseWriter, r *http.Request) error {
			seen = r.Header.Clone()
			w.WriteHeader(http.StatusNoContent)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for k := range seen {
			if k != "X-Forwarded-For" && k != "X-Request-Id" && k != "Connection" && k != "Upgrade" {
				t.Errorf("upgrade %v: next saw %s", upgrade, k)
			}
		}
		if seen.Get("X-Forwarded-For") == "" {
			t.Error("a harmless header was removed")
		}
	}
}

// TestGraphQLPathErrors: an error of a request to the GraphQL endpoint
// that ended before erp_graphql answered (erp_auth's 401, erp_authz's 403)
// is GraphQL-shaped, with the same status and headers; other paths keep
// the envelope, and so does the endpoint with graphql_path off.
func TestGraphQLPathErrors(t *testing.T) {
	t.Parallel()
	refusal := caddyhttp.Error(403, &contract.Error{Status: 403, Code: contract.CodeForbidden, Message: "missing permission invoices:read",
		Context: map[string]any{"required": "invoices:read"}, Header: http.Header{"X-Extra": {"1"}}})
	render := func(h *Handler, path string, accept string) *httptest.ResponseRecorder {
		r := newRequest("POST", path)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.ErrorCtxKey, refusal))
		w, err := serve(t, h, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	on := newHandler(1 << 20)
	on.graphqlPath = "/api/graphql"
	w := render(on, "/api/graphql", "application/graphql-response+json, application/json")
	var doc struct {
		Success *bool `json:"success"`
		Errors  []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code    string         `json:"code"`
				Context map[string]any `json:"context"`
			} `json:"extensions"`
		} `json:"errors"`
		Extensions struct {
			Meta struct {
				RequestID string `json:"request_id"`
				Timestamp string `json:"timestamp"`
			} `json:"meta"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	if w.Code != 403 || doc.Success != nil || len(doc.Errors) != 1 || doc.Errors[0].Message != "missing permission invoices:read" ||
		doc.Errors[0].Extensions.Code != "FORBIDDEN" || doc.Errors[0].Extensions.Context["required"] != "invoices:read" ||
		doc.Extensions.Meta.RequestID == "" || doc.Extensions.Meta.RequestID != w.Header().Get("X-Request-ID") || doc.Extensions.Meta.Timestamp == "" {
		t.Fatalf("GraphQL shape: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Extra") != "1" || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/graphql-response+json") {
		t.Fatalf("headers %v", w.Header())
	}
	if w := render(on, "/api/graphql", ""); !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") || strings.Contains(w.Body.String(), `"success"`) {
		t.Fatalf("application/json client: %v %s", w.Header(), w.Body)
	}
	for _, tc := range []struct {
		name string
		h    *Handler
		path string
	}{
		{"another path", on, "/api/graphql/x"},
		{"graphql_path off", newHandler(1 << 20), "/api/graphql"},
	} {
		w := render(tc.h, tc.path, "")
		if d := decode(t, w.Body.Bytes()); w.Code != 403 || d.Success || len(d.Errors) != 1 || d.Errors[0].Code != "FORBIDDEN" {
			t.Fatalf("%s: the envelope expected, got %d %s", tc.name, w.Code, w.Body)
		}
	}
}

// TestGraphQLPathSetting: the default, off, and a path of one's own.
func TestGraphQLPathSetting(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "/api/graphql", "off": "", "/gql": "/gql"} {
		h := &Handler{GraphQLPath: in}
		if err := h.Provision(caddy.Context{Context: context.Background()}); err != nil {
			t.Fatal(err)
		}
		if h.graphqlPath != want {
			t.Fatalf("graphql_path %q: %q, want %q", in, h.graphqlPath, want)
		}
	}
	if (&Handler{MaxBuffer: 4096, GraphQLPath: "api/graphql"}).Validate() == nil {
		t.Fatal("a relative graphql_path was accepted")
	}
}

func TestConditionalAnswers(t *testing.T) {
	t.Parallel()
	// a stale If-Match: the backend's 412 problem becomes CONFLICT, its ETag (the current version) stays
	r := newRequest("PATCH", "/v1/customers/c1")
	w, err := serve(t, newHandler(1<<20), r, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("ETag", `"v2"`)
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = io.WriteString(w, `{"type":"x","title":"Precondition Failed","status":412,"detail":"changed","code":"STALE"}`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := decode(t, w.Body.Bytes())
	if w.Code != http.StatusPreconditionFailed || d.Success || len(d.Errors) != 1 || d.Errors[0].Code != contract.CodeConflict || d.Errors[0].Message != "changed" {
		t.Fatalf("412: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("ETag") != `"v2"` {
		t.Fatalf("412 lost the current ETag: %v", w.Header())
	}
	// a 304 passes with no body and its ETag
	r = newRequest("GET", "/v1/customers/c1")
	w, err = serve(t, newHandler(1<<20), r, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("ETag", `"v2"`)
		w.WriteHeader(http.StatusNotModified)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != `"v2"` {
		t.Fatalf("304: %d %v %q", w.Code, w.Header(), w.Body)
	}
}
