package obs

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// startTraced runs Caddyfile.example on Postgres and Redis with trace
// export to c, the demo ERP's site traced too (`tracing { span demo }`):
// its server span shows the traceparent the edge sent it.
func startTraced(t *testing.T, c *collector) *stacktest.Instance {
	t.Helper()
	cfg := stacktest.ExampleConfig(t)
	const demo = "\terp_demo\n}"
	if strings.Count(cfg, demo) != 1 {
		t.Fatal("Caddyfile.example's demo site changed shape")
	}
	cfg = strings.Replace(cfg, demo, "\ttracing {\n\t\tspan demo\n\t}\n"+demo, 1)
	redisURL, prefix := testenv.Redis(t)
	return stacktest.Start(t, stacktest.Options{Config: cfg, Env: map[string]string{
		"ERP_POSTGRES_URL":            testenv.Postgres(t),
		"ERP_REDIS_URL":               redisURL,
		"ERP_KEY_PREFIX":              prefix,
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.srv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}})
}

// traceparent is a caller's W3C trace context: its trace id and span id.
func traceparent(t *testing.T) (header, traceID, parentID string) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	traceID, parentID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + parentID + "-01", traceID, parentID
}

// tree indexes a trace's spans.
type tree struct {
	spans []span
	byID  map[string]span
}

func newTree(spans []span) tree {
	tr := tree{spans: spans, byID: map[string]span{}}
	for _, s := range spans {
		tr.byID[s.SpanID] = s
	}
	return tr
}

// one is the trace's only span named name.
func (tr tree) one(t *testing.T, name string) span {
	t.Helper()
	var found []span
	for _, s := range tr.spans {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans %q in the trace:%s", len(found), name, describe(tr.spans))
	}
	return found[0]
}

// under reports whether s descends from ancestor.
func (tr tree) under(s span, ancestor string) bool {
	for p, ok := tr.byID[s.ParentID]; ok; p, ok = tr.byID[p.ParentID] {
		if p.SpanID == ancestor {
			return true
		}
	}
	return false
}

func (tr tree) childOf(t *testing.T, child, parent span) {
	t.Helper()
	if child.ParentID != parent.SpanID {
		t.Fatalf("%s's parent is %s, want %s (%s):%s", child.Name, child.ParentID, parent.Name, parent.SpanID, describe(tr.spans))
	}
}

func (tr tree) none(t *testing.T, prefix string) {
	t.Helper()
	for _, s := range tr.spans {
		if strings.HasPrefix(s.Name, prefix) {
			t.Fatalf("unexpected span %s in the trace:%s", s.Name, describe(tr.spans))
		}
	}
}

func attr(t *testing.T, s span, key, want string) {
	t.Helper()
	if got := s.Attrs[key]; got != want {
		t.Fatalf("%s: %s = %q, want %q (all: %v)", s.Name, key, got, want, s.Attrs)
	}
}

// noSecret: no span attribute holds any of the secrets.
func noSecret(t *testing.T, spans []span, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		for k, v := range s.Attrs {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(v, sec) {
					t.Fatalf("span %s attribute %s holds a credential", s.Name, k)
				}
			}
		}
	}
}

// TestTraces: one API request's spans form the tree
//
//	server span (the caller's traceparent is its parent)
//	├── erp.version ── erp.dialect.rewrite
//	├── erp.auth (jwt, cache miss, acme)
//	├── erp.authz
//	├── erp.quota (redis, batch 1) ── redis.<command>
//	├── erp.proxy ── the demo ERP's server span (the traceparent it received)
//	└── erp.dialect.translate
//
// a refused token stops at erp.auth (no proxy span); one login is an
// authsvc.login span with Postgres queries and Redis commands below it.
func TestTraces(t *testing.T) {
	t.Parallel()
	c := newCollector(t)
	in := startTraced(t, c)
	tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")

	t.Run("api request", func(t *testing.T) {
		tp, traceID, caller := traceparent(t)
		h := demoauth.Bearer(tok.Access)
		h["Traceparent"] = tp
		resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", h)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %s", resp.StatusCode, resp.Body)
		}
		tr := newTree(c.trace(t, traceID, "erpgate", "erp.version", "erp.dialect.rewrite", "erp.auth", "erp.authz",
			"erp.quota", "erp.proxy", "demo", "erp.dialect.translate"))
		server := tr.one(t, "erpgate")
		if server.ParentID != caller {
			t.Fatalf("the server span's parent is %s, not the caller's %s", server.ParentID, caller)
		}
		for _, n := range []string{"erp.version", "erp.auth", "erp.authz", "erp.quota", "erp.proxy", "erp.dialect.translate"} {
			tr.childOf(t, tr.one(t, n), server)
		}
		tr.childOf(t, tr.one(t, "erp.dialect.rewrite"), tr.one(t, "erp.version"))
		proxy := tr.one(t, "erp.proxy")
		tr.childOf(t, tr.one(t, "demo"), proxy) // the backend got erp.proxy's traceparent
		auth := tr.one(t, "erp.auth")
		attr(t, auth, "erp.auth.provider", "jwt")
		attr(t, auth, "erp.auth.cache", "miss")
		attr(t, auth, "erp.outcome", "ok")
		attr(t, auth, "erp.company_id", "acme")
		attr(t, tr.one(t, "erp.authz"), "erp.outcome", "ok")
		quota := tr.one(t, "erp.quota")
		attr(t, quota, "erp.quota.store", "redis")
		attr(t, quota, "erp.quota.batch_size", "1")
		attr(t, quota, "erp.outcome", "allowed")
		attr(t, quota, "erp.plan", "standard")
		redisUnderQuota := false
		for _, s := range tr.spans {
			if strings.HasPrefix(s.Name, "redis.") && tr.under(s, quota.SpanID) {
				redisUnderQuota = true
				attr(t, s, "db.system.name", "redis")
			}
		}
		if !redisUnderQuota {
			t.Fatalf("no Redis command under erp.quota:%s", describe(tr.spans))
		}
		attr(t, proxy, "erp.backend", "invoices")
		attr(t, proxy, "erp.api_version", "v2")
		attr(t, proxy, "http.response.status_code", "200")
		attr(t, tr.one(t, "erp.version"), "erp.backend", "invoices")
		noSecret(t, tr.spans, tok.Access, tok.Refresh)

		// the same token again: a cache hit
		tp, traceID, _ = traceparent(t)
		h["Traceparent"] = tp
		if resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", h); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %s", resp.StatusCode, resp.Body)
		}
		tr = newTree(c.trace(t, traceID, "erpgate", "erp.auth", "erp.proxy"))
		attr(t, tr.one(t, "erp.auth"), "erp.auth.cache", "hit")
	})

	t.Run("refused token", func(t *testing.T) {
		tp, traceID, _ := traceparent(t)
		h := demoauth.Bearer(tok.Access + "x")
		h["Traceparent"] = tp
		resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", h)
		if resp.StatusCode != http.StatusUnauthorized || resp.Envelope(t).Code() != "UNAUTHENTICATED" {
			t.Fatalf("GET with a bad token: %d %s", resp.StatusCode, resp.Body)
		}
		tr := newTree(c.trace(t, traceID, "erpgate", "erp.auth"))
		auth := tr.one(t, "erp.auth")
		attr(t, auth, "erp.outcome", "unauthenticated")
		if auth.Status.String() != "STATUS_CODE_ERROR" {
			t.Fatalf("erp.auth status %v", auth.Status)
		}
		tr.none(t, "erp.proxy")
		tr.none(t, "erp.quota")
		noSecret(t, tr.spans, tok.Access)
	})

	t.Run("login", func(t *testing.T) {
		tp, traceID, _ := traceparent(t)
		body := httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": demoauth.Password})
		resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login", body, map[string]string{"Traceparent": tp})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", resp.StatusCode, resp.Body)
		}
		tr := newTree(c.trace(t, traceID, "erpgate", "authsvc.login", "postgres.query"))
		login := tr.one(t, "authsvc.login")
		tr.childOf(t, login, tr.one(t, "erpgate"))
		attr(t, login, "erp.outcome", "ok")
		var pg, rd int
		for _, s := range tr.spans {
			if !tr.under(s, login.SpanID) {
				continue
			}
			switch {
			case s.Name == "postgres.query":
				pg++
				if s.Attrs["db.operation.name"] == "" || s.Attrs["db.system.name"] != "postgresql" {
					t.Fatalf("postgres.query attributes %v", s.Attrs)
				}
			case strings.HasPrefix(s.Name, "redis."):
				rd++
			}
		}
		if pg == 0 || rd == 0 {
			t.Fatalf("under authsvc.login: %d Postgres queries, %d Redis commands; want some of each:%s", pg, rd, describe(tr.spans))
		}
		noSecret(t, tr.spans, demoauth.Password)
	})

	t.Run("failed login", func(t *testing.T) {
		tp, traceID, _ := traceparent(t)
		body := httpt.JSON(t, map[string]string{"email": "alice@acme.test", "password": "not-the-password"})
		resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login", body, map[string]string{"Traceparent": tp})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad login: %d %s", resp.StatusCode, resp.Body)
		}
		code := resp.Envelope(t).Code()
		tr := newTree(c.trace(t, traceID, "erpgate", "authsvc.login"))
		attr(t, tr.one(t, "authsvc.login"), "erp.outcome", strings.ToLower(code))
		attr(t, tr.one(t, "authsvc.login"), "http.response.status_code", "401")
		noSecret(t, tr.spans, "not-the-password")
	})
}
