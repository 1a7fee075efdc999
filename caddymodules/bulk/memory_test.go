package bulk

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/backends/dialects/rest"
	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
)

// syntheticBackend computes page after page of a REST collection of n rows
// (nothing stored) and records the largest live heap seen while serving.
type syntheticBackend struct {
	n        int
	pages    int
	peakHeap uint64
	buf      []byte
}

func (s *syntheticBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	s.pages++
	if s.pages%500 == 0 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		s.peakHeap = max(s.peakHeap, ms.HeapAlloc)
	}
	b := append(s.buf[:0], '[')
	for i := (page - 1) * limit; i < min(page*limit, s.n); i++ {
		if b[len(b)-1] != '[' {
			b = append(b, ',')
		}
		b = append(b, `{"id":"row_`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `","customer":"Acme, Inc.","amount":1234.5,"paid":false}`...)
	}
	b = append(b, ']')
	s.buf = b
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Total-Count", strconv.Itoa(s.n))
	_, err := w.Write(b)
	return err
}

// countingWriter counts what the client would receive.
type countingWriter struct {
	hdr   http.Header
	bytes int64
	lines int64
}

func (c *countingWriter) Header() http.Header { return c.hdr }
func (c *countingWriter) WriteHeader(int)     {}
func (c *countingWriter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	for _, b := range p {
		if b == '\n' {
			c.lines++
		}
	}
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// A million-row export holds one page: the live heap stays flat however
// many pages pass. (The gateway's RSS figure is in the report / docs.)
func TestMillionRowExportHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million rows")
	}
	const rows = 1_000_000
	back := &syntheticBackend{n: rows}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/big/export?format=ndjson", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r)
	caddyhttp.SetVar(r.Context(), contract.VarBackend, "big")
	subres.Set(r, &subres.Route{Op: subres.OpExport, Dialect: &rest.Dialect{Backend: "big"},
		Target: dialects.Target{Backend: "big", Version: "v1", BasePath: "/v1", Resource: "/big", Public: "/api/v1/big"}})
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	w := &countingWriter{hdr: http.Header{}}
	if err := newHandler(200).ServeHTTP(w, r, caddyhttp.HandlerFunc(back.ServeHTTP)); err != nil {
		t.Fatal(err)
	}
	if w.lines != rows || back.pages != rows/200 {
		t.Fatalf("%d lines over %d pages", w.lines, back.pages)
	}
	growth := int64(back.peakHeap) - int64(base.HeapAlloc)
	t.Logf("1M rows, %d MB sent, %d pages; live heap growth at most %.2f MB", w.bytes>>20, back.pages, float64(growth)/(1<<20))
	if growth > 64<<20 {
		t.Fatalf("live heap grew by %d bytes", growth)
	}
}
