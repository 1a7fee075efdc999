package merge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/backends/demo"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/testenv"
)

// stack is erp_merge in front of the demo ERP (trusting its company
// header), as reverse_proxy would reach it.
type stack struct {
	h    *Handler
	erp  *demo.Server
	gets int // GETs that reached the ERP
}

func newStack() *stack {
	h := &Handler{logger: zap.NewNop()}
	h.defaults()
	h.store = newMemoryStore(time.Hour, 100, 100, 1<<20)
	return &stack{h: h, erp: demo.New()}
}

type result struct {
	code   int
	header http.Header
	body   string
	vars   map[string]any
}

func (s *stack) do(t *testing.T, company, method, path, body string, hdr map[string]string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	vars := map[string]any{}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.company_id", company)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	err := s.h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method == http.MethodGet {
			s.gets++
		}
		r.Header.Set(demo.CompanyHeader, company)
		s.erp.ServeHTTP(w, r)
		return nil
	}))
	if err != nil {
		ce, ok := contract.AsError(err)
		if !ok {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return result{code: ce.Status, body: ce.Code + ": " + ce.Message, vars: vars}
	}
	return result{code: w.Code, header: w.Header(), body: w.Body.String(), vars: vars}
}

const item = "/v1/customers/cus_acme_001"

func merged(hdr string) map[string]string {
	return map[string]string{"If-Match": hdr, "Prefer": "merge=auto"}
}

func TestMergeWithoutConflict(t *testing.T) {
	s := newStack()
	base := s.do(t, "acme", "GET", item, "", nil)
	tag := base.header.Get("ETag")
	// another writer renames the customer
	if r := s.do(t, "acme", "PATCH", item, `{"name":"Renamed Co"}`, map[string]string{"If-Match": tag}); r.code != 200 {
		t.Fatalf("other writer: %d %s", r.code, r.body)
	}
	// the client, still on the old version, changes the email and sends the name it read
	var read map[string]any
	_ = json.Unmarshal([]byte(base.body), &read)
	patch := `{"email":"billing@example.com","name":` + mustJSON(read["name"]) + `}`
	r := s.do(t, "acme", "PATCH", item, patch, merged(tag))
	if r.code != 200 || r.vars[contract.VarMerged] != true || r.header.Get("Preference-Applied") != "merge=auto" {
		t.Fatalf("merge: %d %v %s", r.code, r.vars, r.body)
	}
	var got map[string]any
	_ = json.Unmarshal([]byte(r.body), &got)
	if got["name"] != "Renamed Co" || got["email"] != "billing@example.com" {
		t.Fatalf("both changes must be kept: %s", r.body)
	}
	if g := s.do(t, "acme", "GET", item, "", nil); !strings.Contains(g.body, "Renamed Co") || !strings.Contains(g.body, "billing@example.com") {
		t.Fatalf("the ERP holds %s", g.body)
	}
}

func TestMergeConflict(t *testing.T) {
	s := newStack()
	tag := s.do(t, "acme", "GET", item, "", nil).header.Get("ETag")
	s.do(t, "acme", "PATCH", item, `{"email":"other@example.com"}`, nil)
	r := s.do(t, "acme", "PATCH", item, `{"email":"mine@example.com","name":"Mine"}`, merged(tag))
	if r.code != http.StatusConflict || r.vars[contract.VarEnveloped] != true {
		t.Fatalf("conflict: %d %s", r.code, r.body)
	}
	var doc struct {
		Success bool
		Errors  []struct {
			Code, Field string
			Context     map[string]any
		}
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err, r.body)
	}
	if doc.Success || len(doc.Errors) != 1 || doc.Errors[0].Code != contract.CodeConflict || doc.Errors[0].Field != "email" ||
		doc.Errors[0].Context["current"] != "other@example.com" || doc.Errors[0].Context["proposed"] != "mine@example.com" ||
		doc.Errors[0].Context["base"] == nil {
		t.Fatalf("conflict body %s", r.body)
	}
	if g := s.do(t, "acme", "GET", item, "", nil); strings.Contains(g.body, "Mine") {
		t.Fatal("a conflicting merge changed the record")
	}
}

func TestMergeDeletedAndUnknownBase(t *testing.T) {
	s := newStack()
	const prod = "/v1/products/prd_acme_001"
	tag := s.do(t, "acme", "GET", prod, "", nil).header.Get("ETag")
	s.do(t, "acme", "PATCH", prod, `{"stock":1}`, nil)
	if r := s.do(t, "acme", "PATCH", prod, `{"name":"X"}`, merged(`"never-served"`)); r.code != http.StatusPreconditionFailed || !strings.HasPrefix(r.body, "CONFLICT") {
		t.Fatalf("unknown base: %d %s", r.code, r.body)
	}
	if r := s.do(t, "globex", "PATCH", prod, `{"name":"X"}`, merged(tag)); r.code == 200 {
		t.Fatalf("another company merged on acme's base: %d %s", r.code, r.body)
	}
	if r := s.do(t, "acme", "DELETE", prod, "", nil); r.code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if r := s.do(t, "acme", "PATCH", prod, `{"name":"X"}`, merged(tag)); r.code != http.StatusNotFound {
		t.Fatalf("deleted: %d %s", r.code, r.body)
	}
}

func TestNoMergeWithoutPrefer(t *testing.T) {
	s := newStack()
	tag := s.do(t, "acme", "GET", item, "", nil).header.Get("ETag")
	s.do(t, "acme", "PATCH", item, `{"name":"A"}`, nil)
	gets := s.gets
	if r := s.do(t, "acme", "PATCH", item, `{"email":"x@example.com"}`, map[string]string{"If-Match": tag}); r.code != http.StatusPreconditionFailed {
		t.Fatalf("plain stale If-Match: %d", r.code)
	}
	if s.gets != gets {
		t.Fatal("a PATCH without Prefer: merge=auto fetched the resource")
	}
}

func TestPreferParsing(t *testing.T) {
	for v, want := range map[string]bool{"merge=auto": true, `respond-async, merge="auto"`: true, "MERGE=AUTO; x=1": true,
		"merge=manual": false, "return=minimal": false, "": false} {
		if got := preferMergeAuto([]string{v}); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}

func TestMemoryStoreBounds(t *testing.T) {
	now := time.Unix(0, 0)
	s := newMemoryStore(time.Minute, 2, 2, 10)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	_ = s.Put(ctx, "acme", "a", []byte("1234"))
	_ = s.Put(ctx, "acme", "b", []byte("1234"))
	_ = s.Put(ctx, "acme", "c", []byte("1234")) // evicts a (entries)
	if _, ok, _ := s.Get(ctx, "acme", "a"); ok {
		t.Fatal("entry bound not kept")
	}
	_ = s.Put(ctx, "acme", "d", []byte("123456789")) // bytes: evicts until ≤ 10
	if _, ok, _ := s.Get(ctx, "acme", "b"); ok {
		t.Fatal("byte bound not kept")
	}
	if _, ok, _ := s.Get(ctx, "acme", "d"); !ok {
		t.Fatal("newest entry lost")
	}
	now = now.Add(time.Minute)
	if _, ok, _ := s.Get(ctx, "acme", "d"); ok {
		t.Fatal("expired entry served")
	}
}

// storeContract runs the per-company bound against a store: company a's
// bases beyond max go oldest first, company b's stay.
func storeContract(t *testing.T, a, b Store, max int) {
	t.Helper()
	ctx := context.Background()
	if err := a.Put(ctx, "globex", baseKey("globex", "/p/1", `"g"`), []byte(`{"g":1}`)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < max+2; i++ {
		k := baseKey("acme", "/p/"+strconv.Itoa(i), `"t"`)
		if err := a.Put(ctx, "acme", k, []byte(`{"i":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < max+2; i++ {
		body, ok, err := b.Get(ctx, "acme", baseKey("acme", "/p/"+strconv.Itoa(i), `"t"`))
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 2; ok != want {
			t.Fatalf("acme base %d: held %v, want %v", i, ok, want)
		}
		if ok && string(body) != `{"i":`+strconv.Itoa(i)+`}` {
			t.Fatalf("acme base %d: %s", i, body)
		}
	}
	if body, ok, err := b.Get(ctx, "globex", baseKey("globex", "/p/1", `"g"`)); err != nil || !ok || string(body) != `{"g":1}` {
		t.Fatalf("globex's base was evicted by acme's: %v %v %s", ok, err, body)
	}
	// a base is never read under another company
	if _, ok, _ := b.Get(ctx, "globex", baseKey("acme", "/p/5", `"t"`)); ok {
		t.Fatal("a base crossed companies")
	}
}

func TestMemoryStorePerCompany(t *testing.T) {
	s := newMemoryStore(time.Minute, 100, 3, 1<<20)
	storeContract(t, s, s, 3)
}

// TestRedisStoreSharedAndBounded: two instances' stores on one Redis: a
// base one keeps, the other reads; each company holds at most its bound.
func TestRedisStoreSharedAndBounded(t *testing.T) {
	rdb, prefix := testenv.RedisClient(t)
	a := &redisStore{rdb: rdb, prefix: prefix, ttl: time.Minute, perCompany: 3}
	b := &redisStore{rdb: rdb, prefix: prefix, ttl: time.Minute, perCompany: 3}
	storeContract(t, a, b, 3)
	// the index expires with its bases, and never outgrows the bound
	n, err := rdb.ZCard(context.Background(), a.companyBase("acme")+"i").Result()
	if err != nil || n != 3 {
		t.Fatalf("acme's index holds %d (%v), want 3", n, err)
	}
	ttl, err := rdb.PTTL(context.Background(), a.companyBase("acme")+"i").Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("acme's index TTL %v (%v)", ttl, err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// benchRequest is a GET of path for company acme, as erp_auth leaves it.
func benchRequest(path string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.company_id", "acme")
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

// BenchmarkCollectionGET is erp_merge on a listing (no ETag: nothing
// copied), the commonest request of `handle /api/*`; the backend's answer
// is a fixed one, so only erp_merge's work is measured.
func BenchmarkCollectionGET(b *testing.B) {
	s := newStack()
	r := benchRequest("/v1/customers?limit=10")
	body := []byte(`{"data":[{"id":"cus_acme_001"}]}`)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(body)
		return err
	})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		_ = s.h.ServeHTTP(w, r, next)
	}
}

// BenchmarkItemGET is erp_merge on an item with a strong ETag: the answer
// is copied and kept as a possible merge base (memory store).
func BenchmarkItemGET(b *testing.B) {
	s := newStack()
	r := benchRequest(item)
	body := []byte(`{"id":"cus_acme_001","name":"Acme customer","email":"a@example.com"}`)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		_, err := w.Write(body)
		return err
	})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		_ = s.h.ServeHTTP(w, r, next)
	}
}
