package authsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/testenv"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingHasher counts Verify calls and which hash they were against.
type countingHasher struct {
	inner    authsvc.PasswordHasher
	verifies atomic.Int64
	mu       sync.Mutex
	hashes   []string
}

func (h *countingHasher) Hash(ctx context.Context, p string) (string, error) {
	return h.inner.Hash(ctx, p)
}

// NeedsRehash forwards to the inner hasher, so logins rehash as in production.
func (h *countingHasher) NeedsRehash(enc string) bool {
	r, ok := h.inner.(interface{ NeedsRehash(string) bool })
	return ok && r.NeedsRehash(enc)
}
func (h *countingHasher) Verify(ctx context.Context, p, enc string) (bool, error) {
	h.verifies.Add(1)
	h.mu.Lock()
	h.hashes = append(h.hashes, enc)
	h.mu.Unlock()
	return h.inner.Verify(ctx, p, enc)
}

type env struct {
	svc    *authsvc.Service
	h      http.Handler
	clock  *fakeClock
	hasher *countingHasher
	logs   *observer.ObservedLogs
	rdb    redis.UniversalClient
	prefix string

	heardMu sync.Mutex
	heard   map[string]bool // revocations this process's edges were told
}

type envOpts struct {
	external bool // Postgres + Redis
	cfg      authsvc.Config
	pool     *pgxpool.Pool
	rdb      redis.UniversalClient
	prefix   string
	clock    *fakeClock
	hasher   authsvc.PasswordHasher // default: cheap argon2 parameters
	events   func() authsvc.EventPublisher
	cells    authsvc.CellHooks
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	e := &env{clock: o.clock, logs: logs}
	if e.clock == nil {
		e.clock = &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	}
	// Cheap argon2 parameters: the tests are about the flow, not the cost.
	e.hasher = &countingHasher{inner: authsvc.NewArgon2idParams(1, 64, 1, 4)}
	if o.hasher != nil {
		e.hasher.inner = o.hasher
	}
	cfg := o.cfg
	cfg.Demo = true
	if cfg.IntrospectionSecret == "" {
		cfg.IntrospectionSecret = "edge-secret-for-tests"
	}
	deps := authsvc.Deps{Logger: zap.New(core), Clock: e.clock, Hasher: e.hasher, Events: o.events, Cells: o.cells}
	if o.external {
		pool := o.pool
		if pool == nil {
			var err error
			cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
			if err != nil {
				t.Fatal(err)
			}
			store.ConfigurePool(cfg) // as the service runs: erpgate_app, under row-level security
			if pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
		}
		deps.Pool = pool
		if o.rdb == nil {
			o.rdb, o.prefix = testenv.RedisClient(t)
		}
		deps.Redis = o.rdb
		cfg.KeyPrefix = o.prefix
		e.rdb, e.prefix = o.rdb, o.prefix
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := authsvc.New(ctx, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = svc.Close() })
	e.svc = svc
	e.heard = map[string]bool{}
	_ = svc.SubscribeRevocations(ctx, func(id string) { e.heardMu.Lock(); e.heard[id] = true; e.heardMu.Unlock() })
	e.h = svc.Handler(authsvc.HTTPOptions{})
	return e
}

// edgeTold reports whether the edges were told that session sid was
// revoked: this process's at once (in process), every instance's through a
// mark in Redis, which the relay publishes shortly after (waited for).
func (e *env) edgeTold(t testing.TB, sid string) bool {
	t.Helper()
	e.heardMu.Lock()
	local := e.heard[sid]
	e.heardMu.Unlock()
	if !local || e.rdb == nil {
		return local
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := e.rdb.Exists(context.Background(), e.prefix+contract.RedisKeyRevokedSession+sid).Result()
		if err == nil && n > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (a answer) data() map[string]any {
	d, _ := a.Body["data"].(map[string]any)
	return d
}

func (a answer) str(key string) string {
	s, _ := a.data()[key].(string)
	return s
}

func (a answer) code() string {
	errs, _ := a.Body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	m, _ := errs[0].(map[string]any)
	c, _ := m["code"].(string)
	return c
}

type req struct {
	method, path, bearer, ip, ua string
	body                         any
}

func (e *env) do(t testing.TB, r req) answer {
	t.Helper()
	var body *bytes.Reader
	if r.body != nil {
		b, _ := json.Marshal(r.body)
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.ip != "" {
		hr.RemoteAddr = r.ip + ":4242"
	}
	if r.ua != "" {
		hr.Header.Set("User-Agent", r.ua)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, hr)
	a := answer{Status: w.Code, Header: w.Header(), Raw: w.Body.String()}
	if err := json.Unmarshal(w.Body.Bytes(), &a.Body); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", r.method, r.path, w.Body.String())
	}
	checkEnvelope(t, a)
	return a
}

// checkEnvelope asserts the envelope's shape.
func checkEnvelope(t testing.TB, a answer) {
	t.Helper()
	ok, isBool := a.Body["success"].(bool)
	meta, _ := a.Body["meta"].(map[string]any)
	if !isBool || meta == nil || meta["request_id"] == "" || meta["timestamp"] == "" {
		t.Fatalf("not an envelope: %s", a.Raw)
	}
	if ok != (a.Status < 400) {
		t.Fatalf("success=%v with status %d: %s", ok, a.Status, a.Raw)
	}
	if !ok {
		if _, has := a.Body["errors"].([]any); !has || a.Body["data"] != nil {
			t.Fatalf("failure envelope without errors or with data: %s", a.Raw)
		}
		if a.Status == 401 && !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: %s", a.Raw)
		}
	}
	if a.Header.Get("X-Request-ID") != meta["request_id"] {
		t.Fatalf("X-Request-ID header %q != meta.request_id %v", a.Header.Get("X-Request-ID"), meta["request_id"])
	}
}

func (e *env) login(t testing.TB, email, password string) answer {
	t.Helper()
	return e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": email, "password": password}})
}

// session logs in and selects a company; it returns the select-company answer.
func (e *env) session(t testing.TB, email, company string) answer {
	t.Helper()
	l := e.login(t, email, authsvc.DemoPassword)
	if l.Status != 200 {
		t.Fatalf("login %s: %d %s", email, l.Status, l.Raw)
	}
	s := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", ua: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
		body: map[string]any{"login_token": l.str("login_token"), "company_id": company}})
	if s.Status != 200 {
		t.Fatalf("select-company %s: %d %s", company, s.Status, s.Raw)
	}
	return s
}
