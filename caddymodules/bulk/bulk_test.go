package bulk

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/rest"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
)

// fakeBackend answers a REST collection of n records, paged by page/limit
// with X-Total-Count, keeping only records whose "even" matches an
// even=... parameter; it records the queries it was sent.
type fakeBackend struct {
	n       int
	failAt  int // a page answered 500; 0: none
	queries []string
}

func (f *fakeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	if page == f.failAt {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"code":"BOOM","message":"down"}`))
		return nil
	}
	var all []map[string]any
	for i := range f.n {
		even := i%2 == 0
		if v := q.Get("even"); v != "" && v != strconv.FormatBool(even) {
			continue
		}
		all = append(all, map[string]any{"id": fmt.Sprintf("r%03d", i), "even": even, "note": "a, \"b\""})
	}
	from, to := min((page-1)*limit, len(all)), min(page*limit, len(all))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Total-Count", strconv.Itoa(len(all)))
	b, _ := json.Marshal(all[from:to])
	if all[from:to] == nil {
		b = []byte("[]")
	}
	_, _ = w.Write(b)
	return nil
}

func run(t *testing.T, h *Handler, target string, f *fakeBackend) (*httptest.ResponseRecorder, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r)
	caddyhttp.SetVar(r.Context(), contract.VarBackend, "things")
	subres.Set(r, &subres.Route{Op: subres.OpExport, Dialect: &rest.Dialect{Backend: "things", FilterFields: []string{"even"}},
		Target: dialects.Target{Backend: "things", Version: "v1", BasePath: "/v1", Resource: "/things", Public: "/api/v1/things"}})
	w := httptest.NewRecorder()
	return w, h.ServeHTTP(w, r, caddyhttp.HandlerFunc(f.ServeHTTP))
}

// countingQuota admits `left` charges, then refuses with RATE_LIMITED.
type countingQuota struct{ charged, left int64 }

func (q *countingQuota) Usage(*http.Request) (*erpapp.QuotaUsage, error) {
	return nil, errors.New("unused")
}

func (q *countingQuota) Charge(_ http.ResponseWriter, _ *http.Request, n int64) *contract.Error {
	if q.left < n {
		return contract.NewError(http.StatusTooManyRequests, contract.CodeRateLimited, "slow down")
	}
	q.left -= n
	q.charged += n
	return nil
}

func newHandler(size int) *Handler {
	return newHandlerQuota(size, &countingQuota{left: 1 << 30})
}

func newHandlerQuota(size int, q erpapp.Quota) *Handler {
	return &Handler{PageSize: size, quota: func() erpapp.Quota { return q }, logger: zap.NewNop()}
}

// Each page after the first (which erp_quota counted as the request) is
// charged one request; a refused charge cuts the stream.
func TestExportChargesEveryFurtherPage(t *testing.T) {
	q := &countingQuota{left: 100}
	if _, err := run(t, newHandlerQuota(2, q), "/x/export", &fakeBackend{n: 7}); err != nil {
		t.Fatal(err)
	}
	if q.charged != 3 { // pages 2, 3, 4
		t.Fatalf("charged %d", q.charged)
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v", v)
		}
	}()
	_, _ = run(t, newHandlerQuota(2, &countingQuota{left: 1}), "/x/export", &fakeBackend{n: 7})
	t.Fatal("a refused charge did not cut the stream")
}

func TestExportNDJSONWalksEveryPage(t *testing.T) {
	f := &fakeBackend{n: 7}
	w, err := run(t, newHandler(3), "/api/v1/things/export?format=ndjson", f)
	if err != nil {
		t.Fatal(err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines: %q", len(lines), w.Body.String())
	}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["id"] != fmt.Sprintf("r%03d", i) {
			t.Fatalf("line %d: %q %v", i, l, err)
		}
	}
	want := []string{"/v1/things?limit=3&page=1", "/v1/things?limit=3&page=2", "/v1/things?limit=3&page=3"}
	if fmt.Sprint(f.queries) != fmt.Sprint(want) {
		t.Fatalf("queries %q", f.queries)
	}
}

func TestExportCSVWithFilter(t *testing.T) {
	f := &fakeBackend{n: 9}
	w, err := run(t, newHandler(2), "/api/v1/things/export?format=csv&filter=even:eq:false", f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(w.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"even", "id", "note"}}
	for _, id := range []string{"r001", "r003", "r005", "r007"} {
		want = append(want, []string{"false", id, `a, "b"`})
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %q", rows)
	}
	for _, q := range f.queries {
		if !strings.Contains(q, "even=false") {
			t.Fatalf("filter not sent: %q", q)
		}
	}
}

func TestExportRefusals(t *testing.T) {
	for _, target := range []string{"/x/export?format=xml", "/x/export?page=2", "/x/export?limit=5", "/x/export?cursor=abc", "/x/export?filter=id:gt:1"} {
		f := &fakeBackend{n: 3}
		_, err := run(t, newHandler(2), target, f)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %v", target, err)
		}
		if len(f.queries) != 0 {
			t.Errorf("%s: backend asked", target)
		}
	}
}

// A failing first page is the envelope's error; a failure after the stream
// started cuts it.
func TestExportBackendFailure(t *testing.T) {
	_, err := run(t, newHandler(2), "/x/export", &fakeBackend{n: 5, failAt: 1})
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 500 {
		t.Fatalf("first page: %v", err)
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("later page: recovered %v", v)
		}
	}()
	_, _ = run(t, newHandler(2), "/x/export", &fakeBackend{n: 5, failAt: 2})
	t.Fatal("a cut stream returned normally")
}

// Other requests pass through untouched.
func TestNotAnExportPassesOn(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/things", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	called := false
	err := newHandler(2).ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		called = true
		return nil
	}))
	if err != nil || !called {
		t.Fatal(err, called)
	}
}

// BenchmarkNotAnExport is erp_bulk on every other request of `handle
// /api/*`: the pass-through.
func BenchmarkNotAnExport(b *testing.B) {
	h := newHandler(200)
	r := httptest.NewRequest(http.MethodGet, "/api/v2/invoices?limit=10", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, next)
	}
}
