package statuses

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestPostgresDropsInProcess: the whole stack (Caddyfile.example: edge and
// erp_authsvc in one process) on Postgres through a proxy. Cut: every auth
// endpoint that needs the store answers 503 with Retry-After, and so does
// the edge for an API key it has to introspect; a JWT the edge verifies
// with its own keys still passes. Restored: everything works again, the
// same requests included, without a restart.
func TestPostgresDropsInProcess(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	in := stacktest.Start(t, stacktest.Options{Env: d.env()})
	checks := authChecks(t, in.URL)
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	key := apiKey(t, in.URL, alice.Access)
	edgeKey := check{"edge: API key (introspected from the store)", get(in.URL, "/api/v2/invoices?limit=1", map[string]string{"X-API-Key": key})}
	edgeJWT := check{"edge: JWT (verified with the edge's keys)", get(in.URL, "/api/v2/invoices?limit=1", demoauth.Bearer(alice.Access))}

	d.pg.Cut()
	for _, c := range append(checks, edgeKey) {
		expectUnavailable(t, c)
	}
	expectStatus(t, edgeJWT, 200)

	d.pg.Restore()
	for _, c := range append(checks, edgeKey, edgeJWT) {
		expectWorks(t, c)
	}
}

// TestRedisDropsInProcess: the same stack with Redis cut. The endpoints
// that need Redis (needRedis) answer 503 with Retry-After; those that need
// only Postgres keep working, and so does the edge for a JWT (revocations
// are held in memory; missed ones are re-read when Redis returns).
func TestRedisDropsInProcess(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	in := stacktest.Start(t, stacktest.Options{Env: d.env()})
	checks := authChecks(t, in.URL)
	byName := map[string]check{}
	for _, c := range checks {
		byName[c.name] = c
	}
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	edgeJWT := check{"edge: JWT", get(in.URL, "/api/v2/invoices?limit=1", demoauth.Bearer(alice.Access))}

	d.rd.Cut()
	for _, name := range needRedis {
		expectUnavailable(t, byName[name])
	}
	for _, name := range []string{"refresh", "me", "admin users", "admin companies"} {
		expectStatus(t, byName[name], 200)
	}
	expectStatus(t, edgeJWT, 200)

	d.rd.Restore()
	for _, name := range needRedis {
		expectWorks(t, byName[name])
	}
}

// needRedis are the auth endpoints that cannot be answered without Redis:
// login counts attempts there (password guessing stays bounded), and
// select-company marks its login token used there (single use).
var needRedis = []string{"login", "select-company"}

// TestUncheckableCredentialsAtTheEdge: a remote edge whose auth service
// does not answer cannot check a credential: erp_jwt with a jwks_url that
// does not answer and no key set yet, erp_api_key with an introspect_url
// that does not answer. Both are 503 with Retry-After, not 401 (the
// credential may be perfectly good).
func TestUncheckableCredentialsAtTheEdge(t *testing.T) {
	t.Parallel()
	// ports nothing listens on: reserved, never bound
	jwks := "http://127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)) + "/jwks.json"
	introspect := "http://127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)) + "/api/v1/auth/introspect"
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{"ERP_TEST_INTROSPECTION_SECRET": "statuses-test-introspection-secret-0123456789"}, Config: `{
	admin {$ERP_ADMIN}
}
http://{$ERP_LISTEN} {
	erp_envelope
	handle /api/* {
		erp_auth {
			jwks_url ` + jwks + `
			issuer https://issuer.test
			audience erpgate-test
			introspect_url ` + introspect + `
			introspect_secret {env.ERP_TEST_INTROSPECTION_SECRET}
		}
		respond "unreachable" 200
	}
	handle_errors {
		erp_envelope
	}
}
`})
	// well-formed, signed by a key the edge cannot know yet
	tok := "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln"
	expectUnavailable(t, check{"edge: JWT, JWKS unreachable", get(in.URL, "/api/x", demoauth.Bearer(tok))})
	expectUnavailable(t, check{"edge: API key, introspection unreachable", get(in.URL, "/api/x", map[string]string{"X-API-Key": "erp_live_0123456789abcdef0123456789abcdef"})})
}

// TestPostgresDropsStandalone: `gateway authsvc` (plain net/http) on
// Postgres and Redis through proxies: the same families answer 503 with
// Retry-After while Postgres is cut, and work again after.
func TestPostgresDropsStandalone(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	base := standalone(t, d)
	checks := authChecks(t, base)

	d.pg.Cut()
	for _, c := range checks {
		expectUnavailable(t, c)
	}
	d.pg.Restore()
	for _, c := range checks {
		expectWorks(t, c)
	}

	// Redis: login and select-company need it.
	checks = authChecks(t, base)
	d.rd.Cut()
	for _, c := range checks[:len(needRedis)] {
		expectUnavailable(t, c)
	}
	d.rd.Restore()
	for _, c := range checks[:len(needRedis)] {
		expectWorks(t, c)
	}
}

// standalone starts `gateway authsvc` on d and returns its base URL.
func standalone(t *testing.T, d *deps) string {
	t.Helper()
	port := stacktest.FreePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "authsvc.yaml")
	if err := os.WriteFile(file, []byte("demo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stacktest.Binary(t), "authsvc", "--config", file)
	cmd.Env = append(os.Environ(), "ERP_LISTEN=127.0.0.1:"+strconv.Itoa(port), "HOME="+dir,
		"ERP_POSTGRES_URL="+d.postgresURL, "ERP_REDIS_URL="+d.redisURL, "ERP_KEY_PREFIX="+d.prefix,
		"ERP_INTROSPECTION_SECRET=statuses-test-introspection-secret-0123456789")
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standalone auth service did not listen on %s:\n%s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// TestPostgresDownAtBoot: the stack starts while Postgres is cut. The auth
// service is not ready (its keys live in the store), so the edge cannot
// check any access token: 503 with Retry-After, not 401; login too. Once
// Postgres is reachable, both work without a restart.
func TestPostgresDownAtBoot(t *testing.T) {
	t.Parallel()
	d := newDeps(t)
	d.pg.Cut()
	in := stacktest.Start(t, stacktest.Options{Env: d.env()})
	// any well-formed token: the edge has no key to check it against yet
	tok := "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln"
	expectUnavailable(t, check{"edge: JWT, auth service not ready", get(in.URL, "/api/v2/invoices", demoauth.Bearer(tok))})
	login := check{"login", post(in.URL, "/api/v1/auth/login", map[string]string{"email": "alice@acme.test", "password": demoauth.Password}, nil)}
	expectUnavailable(t, login)

	d.pg.Restore()
	expectWorks(t, login)
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	expectWorks(t, check{"edge: JWT", get(in.URL, "/api/v2/invoices", demoauth.Bearer(alice.Access))})
}
