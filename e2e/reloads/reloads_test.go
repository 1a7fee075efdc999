// Package reloads drives the running gateway through config reloads under
// load, with clients that retry nothing, and counts every exchange that did
// not complete.
package reloads

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const (
	conns   = 32 // the load: 32 kept-alive connections
	reloads = 20
)

// exampleConfig is Caddyfile.example with acme's plan raised so that the
// load never meets the rate limit (the limit is not what is measured).
func exampleConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(stacktest.RepoRoot() + "/Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	const plan = "plan standard 6000/m 1000000"
	if !strings.Contains(string(b), plan) {
		t.Fatalf("Caddyfile.example has no %q to raise", plan)
	}
	return strings.Replace(string(b), plan, "plan standard 10000000/m 1000000000", 1)
}

// TestReloadsDropNoKeptAliveRequest reloads the config 20 times under 32
// kept-alive connections, once with GETs and once with POSTs (which no
// client may resend on its own), through the edge to the demo ERP: every
// exchange completes with the expected status.
func TestReloadsDropNoKeptAliveRequest(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	caddyfile := exampleConfig(t)
	in := stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: map[string]string{
		"ERP_POSTGRES_URL": pg,
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // test-only key
	}})
	token := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	reload := reloader(t, in, caddyfile)
	reload() // the first reload settles what starts lazily

	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, l := range []*load{
		{method: "GET", path: "/api/v1/invoices?limit=5", header: auth, want: 200},
		{method: "POST", path: "/api/v1/invoices", header: auth, want: 201,
			body: []byte(`{"customer_id":"cus_acme_001","amount":5,"currency":"USD"}`)},
	} {
		l.addr = strings.TrimPrefix(in.URL, "http://")
		ctx, cancel := context.WithCancel(context.Background())
		wait := l.run(ctx, conns)
		time.Sleep(300 * time.Millisecond) // every connection is open and kept alive
		start := time.Now()
		for range reloads {
			reload()
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		time.Sleep(300 * time.Millisecond)
		cancel()
		wait()
		t.Logf("%d reloads in %v: %v", reloads, took.Round(time.Millisecond), l)
		// No exchange may fail on a kept-alive connection, nor in any way but
		// the documented race of a new connection reset in the microseconds
		// between the old socket's last accept and its close, before any
		// server read its request (README: "Config reloads"). Under the race
		// build and the whole suite's load up to 16 in 20 reloads were seen
		// (usually 0 to 2): one per reload is tolerated.
		keptAlive, other, resets := l.failures()
		if keptAlive > 0 || other > 0 {
			t.Errorf("%s: %d exchanges failed on kept-alive connections and %d otherwise during %d reloads: %v", l.method, keptAlive, other, reloads, l)
		}
		if resets > reloads {
			t.Errorf("%s: %d new connections reset during %d reloads (more than the documented race explains): %v", l.method, resets, reloads, l)
		}
		if n := l.unexpected(); n > 0 {
			t.Errorf("%s: %d answers with another status than %d: %v", l.method, n, l.want, l)
		}
	}
	if t.Failed() {
		for _, line := range strings.Split(in.Logs(), "\n") {
			if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"status":502`) || strings.Contains(line, "reverse_proxy") {
				t.Log(line)
			}
		}
	}
}
