package authsvc_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clients is the number of concurrent clients of the benchmarks.
const clients = 32

// runClients runs op from `clients` goroutines (each with its own state from
// setup) and reports throughput and p99 latency.
func runClients(b *testing.B, setup func(i int) any, op func(state any) (any, bool)) {
	states := make([]any, clients)
	for i := range states {
		states[i] = setup(i)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % clients
		st := states[i]
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			var ok bool
			st, ok = op(st)
			local = append(local, time.Since(t0))
			if !ok {
				failed.Add(1)
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func serve(h http.Handler, method, path, bearer string, body any) (int, map[string]any) {
	b, _ := json.Marshal(body)
	r := httptest.NewRequest(method, path, bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out struct {
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out.Data
}

// BenchmarkRefresh: POST /refresh through the handler, Postgres + Redis.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, envOpts{external: true})
	runClients(b, func(int) any {
		return e.session(b, "bob@globex.test", "globex").str("refresh_token")
	}, func(st any) (any, bool) {
		code, d := serve(e.h, "POST", "/api/v1/auth/refresh", "", map[string]any{"refresh_token": st})
		if code != 200 {
			return st, false
		}
		return d["refresh_token"], true
	})
}

// BenchmarkSwitchCompany: POST /switch-company back and forth, Postgres + Redis.
func BenchmarkSwitchCompany(b *testing.B) {
	e := newEnv(b, envOpts{external: true})
	type state struct {
		access string
		target string
	}
	runClients(b, func(int) any {
		return &state{access: e.session(b, "alice@acme.test", "acme").str("access_token"), target: "globex"}
	}, func(v any) (any, bool) {
		st := v.(*state)
		code, d := serve(e.h, "POST", "/api/v1/auth/switch-company", st.access, map[string]any{"company_id": st.target})
		if code != 200 {
			return st, false
		}
		st.access, _ = d["access_token"].(string)
		if st.target == "globex" {
			st.target = "acme"
		} else {
			st.target = "globex"
		}
		return st, true
	})
}

// BenchmarkIntrospect: POST /introspect as the edge, Postgres + Redis.
func BenchmarkIntrospect(b *testing.B) {
	e := newEnv(b, envOpts{external: true})
	admin := e.session(b, "alice@acme.test", "acme").str("access_token")
	runClients(b, func(int) any {
		code, d := serve(e.h, "POST", "/api/v1/auth/api-keys", admin, map[string]any{"scope": "invoices:read"})
		if code != 201 {
			b.Fatalf("create key: %d", code)
		}
		return d["key"]
	}, func(key any) (any, bool) {
		code, d := serve(e.h, "POST", "/api/v1/auth/introspect", "edge-secret-for-tests", map[string]any{"token": key})
		return key, code == 200 && d["active"] == true
	})
}

// BenchmarkArgon2id is one password hash with the production parameters.
func BenchmarkArgon2id(b *testing.B) {
	h := newArgon()
	enc, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Verify(b.Context(), "correct horse battery staple", enc); err != nil {
			b.Fatal(err)
		}
	}
}
