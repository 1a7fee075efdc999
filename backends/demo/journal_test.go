package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestJournalPages(t *testing.T) {
	s := New()
	get := func(path string) (*httptest.ResponseRecorder, []map[string]any) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set(CompanyHeader, "acme")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var out []map[string]any
		if w.Code == 200 && w.Body.Len() > 0 && w.Body.Bytes()[0] == '[' {
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return w, out
	}
	w, rows := get("/v1/journal?page=5000&limit=200")
	if w.Code != 200 || len(rows) != 200 || w.Header().Get("X-Total-Count") != "1000000" {
		t.Fatalf("last page: %d %d rows total %q", w.Code, len(rows), w.Header().Get("X-Total-Count"))
	}
	if rows[199]["id"] != "jnl_1000000" || rows[0]["batch"] != "B20" {
		t.Fatalf("last page: %v … %v", rows[0], rows[199])
	}
	if _, rows = get("/v1/journal?page=5001&limit=200"); len(rows) != 0 {
		t.Fatalf("past the end: %d rows", len(rows))
	}
	w, rows = get("/v1/journal?batch=B02&sort=-id&limit=3")
	if w.Header().Get("X-Total-Count") != "50000" || len(rows) != 3 || rows[0]["id"] != "jnl_0100000" || rows[2]["id"] != "jnl_0099998" {
		t.Fatalf("batch B02 by -id: %q %v", w.Header().Get("X-Total-Count"), rows)
	}
	if w, _ = get("/v1/journal?batch=B21"); w.Header().Get("X-Total-Count") != "0" {
		t.Fatalf("unknown batch: total %q", w.Header().Get("X-Total-Count"))
	}
	for _, q := range []string{"sort=amount", "status=posted", "limit=201"} {
		if w, _ = get("/v1/journal?" + q); w.Code != 400 {
			t.Errorf("%s: %d, want 400", q, w.Code)
		}
	}
	if w, _ = get("/v1/journal/jnl_0000042"); w.Code != 200 || !json.Valid(w.Body.Bytes()) {
		t.Fatalf("item: %d", w.Code)
	}
	if w, _ = get("/v1/journal/jnl_1000001"); w.Code != 404 {
		t.Fatalf("item past the end: %d", w.Code)
	}
}

func BenchmarkJournalPage(b *testing.B) {
	s := New()
	r := httptest.NewRequest(http.MethodGet, "/v1/journal?page=2500&limit=200", nil)
	r.Header.Set(CompanyHeader, "acme")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
	}
}
