package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/respcache"
)

// backendStub answers like a backend and counts its calls.
type backendStub struct {
	calls  int
	status int
	body   string
	header http.Header
}

func (b *backendStub) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.calls++
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write([]byte(b.body))
	return nil
}

func newHandler(maxBody int64) *Handler {
	return &Handler{TTL: caddy.Duration(time.Minute), MaxBody: maxBody, Timeout: caddy.Duration(time.Second),
		known: func(string) bool { return true }, store: respcache.NewMemory(100, 1<<20, nil),
		logger: zap.NewNop(), now: time.Now}
}

func request(method, company string) *http.Request {
	r := httptest.NewRequest(method, "/api/v2/products?b=1&a=2", nil)
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.company_id", company)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{
		contract.VarBackend: "products", contract.VarScope: "products:read", contract.VarAPIVersion: "v2"})
	return r.WithContext(ctx)
}

func serve(t *testing.T, h *Handler, r *http.Request, next caddyhttp.Handler) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	w.Header().Set("Ratelimit", "set-before") // a header of an earlier handler: not stored
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestHandlerHitMissInvalidate(t *testing.T) {
	h := newHandler(1 << 20)
	be := &backendStub{status: 200, body: `{"items":[1]}`, header: http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}}
	w := serve(t, h, request("GET", "acme"), be)
	if w.Header().Get("X-Cache") != "MISS" || w.Body.String() != be.body {
		t.Fatalf("first: %v %q", w.Header(), w.Body)
	}
	w = serve(t, h, request("GET", "acme"), be)
	if w.Header().Get("X-Cache") != "HIT" || w.Body.String() != be.body || be.calls != 1 ||
		w.Header().Get("Etag") != `"v1"` || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("second: calls %d %v %q", be.calls, w.Header(), w.Body)
	}
	if w := serve(t, h, request("GET", "globex"), be); w.Header().Get("X-Cache") != "MISS" {
		t.Fatal("other company hit")
	}
	// a failed write does not invalidate, a 2xx write does
	serve(t, h, request("POST", "acme"), &backendStub{status: 422})
	if w := serve(t, h, request("GET", "acme"), be); w.Header().Get("X-Cache") != "HIT" {
		t.Fatal("a refused write invalidated")
	}
	serve(t, h, request("PATCH", "acme"), &backendStub{status: 200})
	if w := serve(t, h, request("GET", "acme"), be); w.Header().Get("X-Cache") != "MISS" {
		t.Fatal("a write did not invalidate")
	}
	if w := serve(t, h, request("GET", "globex"), be); w.Header().Get("X-Cache") != "HIT" {
		t.Fatal("acme's write invalidated globex")
	}
}

func TestHandlerNotStored(t *testing.T) {
	cases := map[string]*backendStub{
		"too big":   {status: 200, body: strings.Repeat("x", 65)},
		"404":       {status: 404, body: "{}"},
		"no-store":  {status: 200, body: "{}", header: http.Header{"Cache-Control": {"no-store"}}},
		"private":   {status: 200, body: "{}", header: http.Header{"Cache-Control": {"private"}}},
		"vary user": {status: 200, body: "{}", header: http.Header{"Vary": {"Authorization"}}},
	}
	for name, be := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHandler(64)
			w := serve(t, h, request("GET", "acme"), be)
			if w.Body.String() != be.body || w.Code != be.status {
				t.Fatalf("answer changed: %d %q", w.Code, w.Body)
			}
			if w := serve(t, h, request("GET", "acme"), be); w.Header().Get("X-Cache") != "MISS" || be.calls != 2 {
				t.Fatalf("stored: %v", w.Header())
			}
		})
	}
}

func TestHandlerUnauthenticatedPasses(t *testing.T) {
	h := newHandler(1 << 20)
	be := &backendStub{status: 200, body: "{}"}
	for i := 0; i < 2; i++ {
		if w := serve(t, h, request("GET", ""), be); w.Header().Get("X-Cache") != "" {
			t.Fatal("cached without a company")
		}
	}
	if be.calls != 2 {
		t.Fatal("calls", be.calls)
	}
}

func BenchmarkHandlerHit(b *testing.B) {
	h := newHandler(1 << 20)
	be := &backendStub{status: 200, body: strings.Repeat("x", 2048), header: http.Header{"Content-Type": {"application/json"}}}
	r := request("GET", "acme")
	_ = h.ServeHTTP(httptest.NewRecorder(), r, be)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		_ = h.ServeHTTP(w, r, be)
	}
	if be.calls != 1 {
		b.Fatal("not a hit:", be.calls)
	}
}

// countingStore counts invalidations.
type countingStore struct {
	respcache.Store
	invalidations int
}

func (s *countingStore) Invalidate(ctx context.Context, group string) error {
	s.invalidations++
	return s.Store.Invalidate(ctx, group)
}

func TestWriteWithoutCacheDoesNotInvalidate(t *testing.T) {
	h := newHandler(1 << 20)
	h.TTL = 0
	st := &countingStore{Store: h.store}
	h.store = st
	be := &backendStub{status: 201, body: `{}`}
	serve(t, h, request("POST", "acme"), be)
	if be.calls != 1 || st.invalidations != 0 {
		t.Fatalf("TTL 0: calls %d, invalidations %d; want 1, 0", be.calls, st.invalidations)
	}
	h.Backends = map[string]*BackendConfig{"products": {TTL: caddy.Duration(time.Minute)}}
	serve(t, h, request("POST", "acme"), be)
	if st.invalidations != 1 {
		t.Fatalf("cached backend: invalidations %d, want 1", st.invalidations)
	}
}

func TestEventInvalidates(t *testing.T) {
	h := newHandler(1 << 20)
	h.byResource = map[string][]string{"catalogue": {"products"}}
	be := &backendStub{status: 200, body: `{"items":[1]}`, header: http.Header{"Content-Type": {"application/json"}}}
	for _, company := range []string{"acme", "globex"} {
		serve(t, h, request("GET", company), be)
		if w := serve(t, h, request("GET", company), be); w.Header().Get("X-Cache") != "HIT" {
			t.Fatalf("%s: not cached", company)
		}
	}
	ctx := context.Background()
	// events of other resources, or that are not writes, change nothing
	h.onEvent(ctx, []byte(`{"type":"erp.products.updated","companyid":"acme"}`))
	h.onEvent(ctx, []byte(`{"type":"erp.auth.login.succeeded","companyid":"acme"}`))
	if w := serve(t, h, request("GET", "acme"), be); w.Header().Get("X-Cache") != "HIT" {
		t.Fatal("an event of another resource invalidated")
	}
	h.onEvent(ctx, []byte(`{"type":"erp.catalogue.updated","companyid":"acme","subject":"p1"}`))
	if w := serve(t, h, request("GET", "acme"), be); w.Header().Get("X-Cache") != "MISS" {
		t.Fatal("the company's write event did not invalidate")
	}
	if w := serve(t, h, request("GET", "globex"), be); w.Header().Get("X-Cache") != "HIT" {
		t.Fatal("another company's entries were invalidated")
	}
}
