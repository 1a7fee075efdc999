package foundation

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestReloadKeepsSharedClients reloads the config 20 times under load, with
// Postgres and Redis configured: no request fails, the dependencies stay
// ready, and the goroutine count does not grow (no leaked pools or clients).
func TestReloadKeepsSharedClients(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_POSTGRES_URL": pg,
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // test-only key
	}})
	ready := httpt.Get(t, in.URL+"/health/ready", nil)
	if env := ready.Envelope(t); ready.StatusCode != 200 || !strings.Contains(string(env.Data), `"postgres":"up"`) || !strings.Contains(string(env.Data), `"redis":"up"`) {
		t.Fatalf("not ready: %d %s", ready.StatusCode, ready.Body)
	}
	token := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	caddyfile, err := os.ReadFile(stacktest.RepoRoot() + "/Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	reload := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, in.AdminURL+"/load", strings.NewReader(string(caddyfile)))
		req.Header.Set("Content-Type", "text/caddyfile")
		req.Header.Set("Cache-Control", "must-revalidate") // reload even though unchanged
		// A load restarts the admin server, and the old one closes its idle
		// connections when it is done, after the answer: a pooled
		// connection (the goroutine count's, say) may be closing just as
		// this request is written on it. A connection of its own each time.
		req.Close = true
		resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("reload: %d %s", resp.StatusCode, b)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// failed counts answers that are not 200 (a dropped pool shows as a 503
	// from /health/ready, a broken hop as a 502); transport counts
	// connection-level errors of the client (a kept-alive connection closed
	// by the old server as the next request was on its way).
	var ok, failed, transport atomic.Int64
	var firstErr, firstTransport atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				for _, path := range []string{"/api/v1/invoices?limit=5", "/health/ready"} {
					req, _ := http.NewRequest(http.MethodGet, in.URL+path, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := httpt.Client.Do(req)
					if err != nil {
						transport.Add(1)
						firstTransport.CompareAndSwap(nil, err.Error())
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: status %d", path, resp.StatusCode))
						continue
					}
					ok.Add(1)
				}
			}
		}()
	}
	reload() // warm up: the first reload settles lazily started goroutines
	time.Sleep(500 * time.Millisecond)
	base := goroutines(t, in.AdminURL)
	for range 20 {
		reload()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	httpt.Client.CloseIdleConnections()
	time.Sleep(1500 * time.Millisecond) // old servers finish their graceful close
	after := goroutines(t, in.AdminURL)
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	// Caddyfile.example's erp_handoff hands kept-alive connections and the
	// old socket's accept queue to the new config: no kept-alive connection
	// breaks. What remains is the documented race of a new connection whose
	// handshake completes on the old socket between its last accept and its
	// close (microseconds; e2e/reloads tells the kinds apart): at most 2.
	if transport.Load() > 2 {
		t.Fatalf("%d of %d requests hit connection errors during reloads; first: %v", transport.Load(), ok.Load()+failed.Load()+transport.Load(), firstTransport.Load())
	}
	if after > base+10 {
		// old servers may still be closing: give them a moment, then judge
		time.Sleep(3 * time.Second)
		if after = goroutines(t, in.AdminURL); after > base+10 {
			dump := httpt.Get(t, in.AdminURL+"/debug/pprof/goroutine?debug=1", nil)
			t.Fatalf("goroutines grew from %d to %d over 20 reloads:\n%s", base, after, dump.Body)
		}
	}
	t.Logf("%d requests during 20 reloads (%d connection errors); goroutines %d -> %d", ok.Load(), transport.Load(), base, after)
	if n := postgresConnections(t, pg); n > 8 {
		t.Fatalf("%d connections to the test database after 20 reloads: pools leak", n)
	}
	ready = httpt.Get(t, in.URL+"/health/ready", nil)
	if ready.StatusCode != 200 {
		t.Fatalf("not ready after reloads: %s", ready.Body)
	}
}

// postgresConnections counts the server's connections to the database of dsn.
func postgresConnections(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func goroutines(t *testing.T, admin string) int {
	t.Helper()
	resp := httpt.Get(t, admin+"/debug/pprof/goroutine?debug=1", nil)
	var n int
	if _, err := fmt.Sscanf(string(resp.Body), "goroutine profile: total %d", &n); err != nil {
		t.Fatalf("goroutine profile: %v: %.100s", err, resp.Body)
	}
	return n
}
