package respcache

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/redisclustertest"
	"github.com/erpgate/erpgate/internal/testenv"
)

func req(company, scope string) Request {
	return Request{Company: company, Scope: scope, Backend: "products", Version: "v1",
		Path: "/api/v1/products", Query: "page=1&q=x", Header: http.Header{"Accept": {"application/json"}}}
}

func TestKeyIsolation(t *testing.T) {
	t.Parallel()
	base := KeyFor(req("acme", "products:read customers:read"))
	same := []Request{
		req("acme", "customers:read products:read"),
		req("acme", " products:read  customers:read products:read"),
		func() Request { r := req("acme", "products:read customers:read"); r.Query = "q=x&page=1"; return r }(),
	}
	for i, r := range same {
		if KeyFor(r) != base {
			t.Errorf("same answer %d: key differs", i)
		}
	}
	other := map[string]Request{
		"company": req("globex", "products:read customers:read"),
		"scopes":  req("acme", "products:read"),
		"more":    req("acme", "products:read customers:read invoices:read"),
		"version": func() Request { r := req("acme", "products:read customers:read"); r.Version = "v2"; return r }(),
		"path":    func() Request { r := req("acme", "products:read customers:read"); r.Path += "/1"; return r }(),
		"query":   func() Request { r := req("acme", "products:read customers:read"); r.Query = "page=2&q=x"; return r }(),
		"accept": func() Request {
			r := req("acme", "products:read customers:read")
			r.Header = http.Header{"Accept": {"text/csv"}}
			return r
		}(),
		"language": func() Request {
			r := req("acme", "products:read customers:read")
			r.Header.Set("Accept-Language", "de")
			return r
		}(),
		"backend": func() Request { r := req("acme", "products:read customers:read"); r.Backend = "customers"; return r }(),
		// field boundaries: "ab"+"c" must not hash as "a"+"bc"
		"boundary": {Company: "acmep", Scope: "roducts:read customers:read", Backend: "products", Version: "v1",
			Path: "/api/v1/products", Query: "page=1&q=x", Header: http.Header{"Accept": {"application/json"}}},
	}
	for name, r := range other {
		if KeyFor(r) == base {
			t.Errorf("%s: shares the key", name)
		}
	}
	if KeyFor(other["company"]).Group == base.Group || KeyFor(other["backend"]).Group == base.Group {
		t.Error("company or backend shares the generation group")
	}
	if KeyFor(other["scopes"]).Group != base.Group {
		t.Error("scopes split the generation group: a write would not invalidate every caller")
	}
}

func TestPolicyFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		h    http.Header
		want RequestPolicy
	}{
		{http.Header{}, Use},
		{http.Header{"Cache-Control": {"max-age=60"}}, Use},
		{http.Header{"Cache-Control": {"no-cache"}}, Refresh},
		{http.Header{"Cache-Control": {"max-age=0"}}, Refresh},
		{http.Header{"Pragma": {"no-cache"}}, Refresh},
		{http.Header{"Cache-Control": {"max-age=5, No-Store"}}, Bypass},
		{http.Header{"If-None-Match": {`"x"`}}, Bypass},
		{http.Header{"Range": {"bytes=0-1"}}, Bypass},
	}
	for i, c := range cases {
		if got := PolicyFor(c.h); got != c.want {
			t.Errorf("%d %v: %v, want %v", i, c.h, got, c.want)
		}
	}
}

func TestStoreTTL(t *testing.T) {
	t.Parallel()
	ttl := 30 * time.Second
	cases := []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
	}{
		{"plain", 200, http.Header{}, ttl},
		{"not 200", 201, http.Header{}, 0},
		{"404", 404, http.Header{}, 0},
		{"no-store", 200, http.Header{"Cache-Control": {"no-store"}}, 0},
		{"no-cache", 200, http.Header{"Cache-Control": {"no-cache"}}, 0},
		{"private", 200, http.Header{"Cache-Control": {"private, max-age=60"}}, 0},
		{"max-age shorter", 200, http.Header{"Cache-Control": {"max-age=5"}}, 5 * time.Second},
		{"max-age longer", 200, http.Header{"Cache-Control": {"max-age=500"}}, ttl},
		{"s-maxage first", 200, http.Header{"Cache-Control": {"max-age=1, s-maxage=7"}}, 7 * time.Second},
		{"max-age 0", 200, http.Header{"Cache-Control": {"max-age=0"}}, 0},
		{"bad max-age", 200, http.Header{"Cache-Control": {"max-age=x"}}, 0},
		{"cookie", 200, http.Header{"Set-Cookie": {"a=b"}}, 0},
		{"vary accept", 200, http.Header{"Vary": {"Accept, accept-encoding"}}, ttl},
		{"vary other", 200, http.Header{"Vary": {"Accept, Authorization"}}, 0},
		{"vary star", 200, http.Header{"Vary": {"*"}}, 0},
	}
	for _, c := range cases {
		if got := StoreTTL(c.status, c.h, ttl); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if StoreTTL(200, http.Header{}, 0) != 0 {
		t.Error("ttl 0 must not store")
	}
}

func TestEntryRoundTrip(t *testing.T) {
	t.Parallel()
	e := &Entry{Status: 200, Stored: time.UnixMilli(1700000000123),
		Header: http.Header{"Content-Type": {"application/json"}, "Link": {"<a>", "<b>"}},
		Body:   []byte(`{"data":[1,2]}`)}
	got, err := Decode(e.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != 200 || !got.Stored.Equal(e.Stored) || !bytes.Equal(got.Body, e.Body) ||
		got.Header.Get("Content-Type") != "application/json" || len(got.Header.Values("Link")) != 2 {
		t.Fatalf("round trip: %+v", got)
	}
	enc := e.Encode()
	for i := 0; i < len(enc); i++ {
		if _, err := Decode(enc[:i]); err == nil {
			t.Fatalf("truncated at %d decodes", i)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add((&Entry{Status: 200, Header: http.Header{"A": {"b"}}, Body: []byte("x")}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err == nil {
			if _, err := Decode(e.Encode()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// stores runs fn against a memory store and a Redis store (a real server:
// ERP_TEST_REDIS_URL; the test fails without one).
func stores(t *testing.T, fn func(t *testing.T, s Store, clock *fakeClock)) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		c := &fakeClock{t: time.Unix(1700000000, 0)}
		fn(t, NewMemory(100, 1<<20, c.now), c)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		client, prefix := testenv.RedisClient(t)
		fn(t, NewRedis(client, prefix), nil)
	})
	// the lookup script reads an entry key it is not given (built from the
	// generation it reads): on a cluster that works only because the
	// group's hash tag puts it in the generation key's slot
	t.Run("redis-cluster", func(t *testing.T) {
		t.Parallel()
		c := redisclustertest.Start(t, redisclustertest.Options{})
		fn(t, NewRedis(c.Client(t), "rc:"), nil)
	})
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestStoreContract(t *testing.T) {
	t.Parallel()
	stores(t, func(t *testing.T, s Store, clock *fakeClock) {
		ctx := context.Background()
		acme := KeyFor(req("acme", "products:read"))
		globex := KeyFor(req("globex", "products:read"))

		gen, v, err := s.Lookup(ctx, acme)
		if err != nil || v != nil || gen != 0 {
			t.Fatalf("empty lookup: %d %q %v", gen, v, err)
		}
		if err := s.Put(ctx, acme, gen, []byte("acme answer"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, v, _ := s.Lookup(ctx, acme); string(v) != "acme answer" {
			t.Fatalf("lookup after put: %q", v)
		}
		// other company: nothing
		if _, v, _ := s.Lookup(ctx, globex); v != nil {
			t.Fatalf("other company got %q", v)
		}
		gg, _, _ := s.Lookup(ctx, globex)
		_ = s.Put(ctx, globex, gg, []byte("globex answer"), time.Minute)

		// invalidating acme leaves globex
		if err := s.Invalidate(ctx, acme.Group); err != nil {
			t.Fatal(err)
		}
		gen2, v, err := s.Lookup(ctx, acme)
		if err != nil || v != nil || gen2 == gen {
			t.Fatalf("after invalidate: %d %q %v", gen2, v, err)
		}
		if _, v, _ := s.Lookup(ctx, globex); string(v) != "globex answer" {
			t.Fatalf("other company invalidated: %q", v)
		}
		// a put with the generation read before the invalidation is never served
		_ = s.Put(ctx, acme, gen, []byte("stale"), time.Minute)
		if _, v, _ := s.Lookup(ctx, acme); v != nil {
			t.Fatalf("stale put served: %q", v)
		}
		if clock != nil { // expiry (Redis' own TTL is Redis' business)
			_ = s.Put(ctx, acme, gen2, []byte("short"), time.Second)
			if _, v, _ := s.Lookup(ctx, acme); string(v) != "short" {
				t.Fatalf("short: %q", v)
			}
			clock.add(time.Second)
			if _, v, _ := s.Lookup(ctx, acme); v != nil {
				t.Fatalf("expired entry served: %q", v)
			}
		}
	})
}

func TestMemoryBounds(t *testing.T) {
	t.Parallel()
	c := &fakeClock{t: time.Unix(0, 0)}
	m := NewMemory(10, 1000, c.now)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		r := req("acme", "s")
		r.Path = "/p/" + strconv.Itoa(i)
		_ = m.Put(ctx, KeyFor(r), 0, make([]byte, 50), time.Duration(i+1)*time.Second)
		if m.Len() > 10 || m.bytes > 1000 {
			t.Fatalf("bounds broken at %d: %d entries %d bytes", i, m.Len(), m.bytes)
		}
	}
	// the latest (longest-lived) survives
	r := req("acme", "s")
	r.Path = "/p/49"
	if _, v, _ := m.Lookup(ctx, KeyFor(r)); v == nil {
		t.Fatal("newest entry evicted")
	}
	if err := m.Put(ctx, KeyFor(r), 0, make([]byte, 2000), time.Minute); err != nil || m.bytes > 1000 {
		t.Fatal("value larger than the store kept")
	}
}

func BenchmarkHitPath(b *testing.B) {
	m := NewMemory(1000, 1<<24, nil)
	ctx := context.Background()
	r := req("acme", "products:read customers:read invoices:read")
	e := &Entry{Status: 200, Stored: time.Now(), Header: http.Header{"Content-Type": {"application/json"}},
		Body: bytes.Repeat([]byte("x"), 2048)}
	k := KeyFor(r)
	_ = m.Put(ctx, k, 0, e.Encode(), time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, v, err := m.Lookup(ctx, KeyFor(r))
			if err != nil || v == nil {
				b.Fatal("miss")
			}
			if _, err := Decode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestWriteEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body        string
		company, resource string
		ok                bool
	}{
		{"update", `{"type":"erp.products.updated","companyid":"acme"}`, "acme", "products", true},
		{"create", `{"type":"erp.ledger_entries.created","companyid":"globex"}`, "globex", "ledger_entries", true},
		{"delete", `{"type":"erp.invoices.deleted","companyid":"acme","data":{"id":"1"}}`, "acme", "invoices", true},
		{"auth event", `{"type":"erp.auth.login.succeeded","companyid":"acme"}`, "", "", false},
		{"other action", `{"type":"erp.products.archived","companyid":"acme"}`, "", "", false},
		{"no company", `{"type":"erp.products.updated"}`, "", "", false},
		{"not erp", `{"type":"com.example.products.updated","companyid":"acme"}`, "", "", false},
		{"not json", `erp.products.updated`, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, r, ok := WriteEvent([]byte(tc.body))
			if c != tc.company || r != tc.resource || ok != tc.ok {
				t.Fatalf("WriteEvent(%s) = %q %q %v, want %q %q %v", tc.body, c, r, ok, tc.company, tc.resource, tc.ok)
			}
		})
	}
}
