// Package cells drives company cells and the fleet's runtime changes in the
// running binary: two edge instances sharing Postgres and Redis, each with
// the demo ERP served on two more ports as the cells eu and us of the
// invoices and products backends. A company moved to another cell through
// one instance's admin API answers from the new cell at both instances
// within 2 s while a slow request in flight finishes on the old one; a
// backend registered and a quota override made through one instance's
// Caddy admin API apply at the other and at an instance started later.
package cells

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// caddyfile: the demo ERP on ERP_DEMO_LISTEN (the versions' default
// upstreams), CELL_EU and CELL_US (the cells), each marking its answers
// with X-Cell; products is mounted on the demo's diagnostics, whose
// /_demo/slow takes 3 s at the cells.
const caddyfile = `{
	admin {$ERP_ADMIN}
	erp {
		postgres {env.ERP_POSTGRES_URL}
		redis {env.ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
		backend invoices {
			version v2 http://{$ERP_DEMO_LISTEN}/v2 {
				cell eu http://{$CELL_EU}/v2
				cell us http://{$CELL_US}/v2
			}
		}
		backend products {
			path /
			version v1 http://{$ERP_DEMO_LISTEN}/_demo {
				cell eu http://{$CELL_EU}/_demo
				cell us http://{$CELL_US}/_demo
			}
		}
	}
}

http://{$ERP_LISTEN} {
	bind {$ERP_LISTEN}
	erp_envelope
	handle /api/v1/auth/* {
		erp_authsvc
	}
	handle /api/v1/admin/* {
		erp_authsvc
	}
	handle /.well-known/* {
		erp_authsvc
	}
	handle /api/v1/usage {
		erp_auth {
			authenticated_only
		}
		erp_usage
	}
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan free 60/m 10000
			plan standard 6000/m 1000000
		}
		reverse_proxy {
			dynamic erp
			header_up Host {upstream_hostport}
		}
	}
	error 404
	handle_errors {
		erp_envelope
	}
}

http://{$ERP_DEMO_LISTEN} {
	bind {$ERP_DEMO_LISTEN}
	header X-Cell default
	erp_demo
}

http://{$CELL_EU} {
	bind {$CELL_EU}
	header X-Cell eu
	rewrite /_demo/slow /_demo/slow?ms=3000
	erp_demo
}

http://{$CELL_US} {
	bind {$CELL_US}
	header X-Cell us
	rewrite /_demo/slow /_demo/slow?ms=3000
	erp_demo
}
`

// fleetEnv is what instances of one fleet share.
type fleetEnv map[string]string

func newFleet(t *testing.T) fleetEnv {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	return fleetEnv{
		"ERP_POSTGRES_URL": testenv.Postgres(t),
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   testMasterKey,
	}
}

// start starts one instance of the fleet, with cells of its own.
func (f fleetEnv) start(t *testing.T) *stacktest.Instance {
	t.Helper()
	env := map[string]string{
		"CELL_EU": "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)),
		"CELL_US": "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t)),
	}
	for k, v := range f {
		env[k] = v
	}
	return stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: env})
}

// cellOf is the cell that answered a GET of path at in ("" on a failure).
func cellOf(t *testing.T, in *stacktest.Instance, token, path string) (string, *httpt.Response) {
	t.Helper()
	resp := httpt.Get(t, in.URL+path, demoauth.Bearer(token))
	if resp.StatusCode != 200 {
		return "", resp
	}
	return resp.Header.Get("X-Cell"), resp
}

// waitCell polls both paths at in until they answer from cell, at most
// within; it returns how long that took.
func waitCell(t *testing.T, in *stacktest.Instance, token, cell string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		a, r1 := cellOf(t, in, token, "/api/v1/products/ping")
		b, r2 := cellOf(t, in, token, "/api/v2/invoices?limit=1")
		if a == cell && b == cell {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("%s: still answered from %q / %q after %v, want %q (%d %s / %d %s)", in.URL, a, b, within, cell,
				r1.StatusCode, r1.Body, r2.StatusCode, r2.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func admin(t *testing.T, in *stacktest.Instance, method, path, body string) {
	t.Helper()
	resp := httpt.Do(t, method, in.AdminURL+path, []byte(body), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("admin %s %s: %d %s", method, path, resp.StatusCode, resp.Body)
	}
}

func putCell(t *testing.T, in *stacktest.Instance, token, company, cell string) *httpt.Response {
	t.Helper()
	return httpt.Do(t, http.MethodPut, in.URL+"/api/v1/admin/companies/"+company+"/cell", httpt.JSON(t, map[string]string{"cell": cell}), demoauth.Bearer(token))
}

// TestCellsAcrossTheFleet: acme assigned to eu answers from eu at both
// instances; moved to us through A, both answer from us within 2 s, while
// a 3 s request sent to eu before the move finishes there with 200. A
// company without a cell is served by the default upstreams. Refusals:
// an unknown cell (422 naming the known ones), a malformed body, a
// caller who is not a platform admin (403).
func TestCellsAcrossTheFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	a, b := f.start(t), f.start(t)
	root := demoauth.Login(t, a.URL, "root@erpgate.local", "acme").Access
	alice := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	bob := demoauth.Login(t, b.URL, "bob@globex.test", "globex").Access

	// no cell yet: the default upstreams
	for _, in := range []*stacktest.Instance{a, b} {
		waitCell(t, in, alice, "default", 5*time.Second)
	}

	// refusals, in the envelope
	resp := putCell(t, a, root, "acme", "mars")
	if env := resp.Envelope(t); resp.StatusCode != 422 || env.Code() != "VALIDATION_FAILED" || !strings.Contains(string(resp.Body), "known cells: eu, us") {
		t.Fatalf("unknown cell: %d %s", resp.StatusCode, resp.Body)
	}
	resp = putCell(t, a, root, "acme", "Not A Name")
	if env := resp.Envelope(t); resp.StatusCode != 422 || env.Code() != "VALIDATION_FAILED" {
		t.Fatalf("malformed cell: %d %s", resp.StatusCode, resp.Body)
	}
	resp = httpt.Do(t, http.MethodPut, a.URL+"/api/v1/admin/companies/acme/cell", []byte(`{"cell":`), demoauth.Bearer(root))
	if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" {
		t.Fatalf("broken body: %d %s", resp.StatusCode, resp.Body)
	}
	resp = putCell(t, a, alice, "acme", "eu") // acme's admin, not a platform admin
	if env := resp.Envelope(t); resp.StatusCode != 403 || env.Code() != "FORBIDDEN" {
		t.Fatalf("company admin: %d %s", resp.StatusCode, resp.Body)
	}
	resp = putCell(t, a, root, "nope", "eu")
	if env := resp.Envelope(t); resp.StatusCode != 404 || env.Code() != "NOT_FOUND" {
		t.Fatalf("unknown company: %d %s", resp.StatusCode, resp.Body)
	}

	// acme → eu, through B this time
	if resp := putCell(t, b, root, "acme", "eu"); resp.StatusCode != 200 {
		t.Fatalf("put eu: %d %s", resp.StatusCode, resp.Body)
	}
	for _, in := range []*stacktest.Instance{a, b} {
		t.Logf("%s answers acme from eu after %v", in.URL, waitCell(t, in, alice, "eu", 2*time.Second))
	}
	// globex has no cell: still the default upstreams
	if c, r := cellOf(t, b, bob, "/api/v2/invoices?limit=1"); c != "default" {
		t.Fatalf("globex: %q %d %s", c, r.StatusCode, r.Body)
	}

	// a slow request in flight on eu while acme moves to us
	type result struct {
		cell   string
		status int
		body   string
	}
	slow := make(chan result, 1)
	var started sync.WaitGroup
	started.Add(1)
	go func() {
		started.Done()
		resp, err := http.DefaultClient.Do(mustReq(a.URL+"/api/v1/products/slow", alice))
		if err != nil {
			slow <- result{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&env)
		slow <- result{cell: resp.Header.Get("X-Cell"), status: resp.StatusCode, body: string(env.Data)}
	}()
	started.Wait()
	time.Sleep(300 * time.Millisecond) // the slow request reached eu
	moved := time.Now()
	resp = putCell(t, a, root, "acme", "us")
	if env := resp.Envelope(t); resp.StatusCode != 200 || !strings.Contains(string(env.Data), `"previous":"eu"`) {
		t.Fatalf("put us: %d %s", resp.StatusCode, resp.Body)
	}
	for _, in := range []*stacktest.Instance{a, b} {
		waitCell(t, in, alice, "us", 2*time.Second)
		t.Logf("%s answers acme from us %v after the move", in.URL, time.Since(moved))
	}
	select {
	case r := <-slow:
		if r.status != 200 || r.cell != "eu" || !strings.Contains(r.body, "slept_ms") {
			t.Fatalf("the request in flight during the move: %+v", r)
		}
		if time.Since(moved) < 0 {
			t.Fatal("unreachable")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the request in flight never finished")
	}

	// GET reads it back; DELETE sends acme to the defaults again
	resp = httpt.Do(t, http.MethodGet, b.URL+"/api/v1/admin/companies/acme/cell", nil, demoauth.Bearer(root))
	if env := resp.Envelope(t); resp.StatusCode != 200 || !strings.Contains(string(env.Data), `"cell":"us"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, resp.Body)
	}
	resp = httpt.Do(t, http.MethodDelete, b.URL+"/api/v1/admin/companies/acme/cell", nil, demoauth.Bearer(root))
	if resp.StatusCode != 200 {
		t.Fatalf("delete: %d %s", resp.StatusCode, resp.Body)
	}
	for _, in := range []*stacktest.Instance{a, b} {
		waitCell(t, in, alice, "default", 2*time.Second)
	}
}

func mustReq(url, token string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// TestFleetRuntimeChanges: a backend registered and a quota override made
// through instance A's Caddy admin API serve at instance B within seconds
// (B loads a config of its own, which its admin API shows), survive B's
// restart and are there at an instance started afterwards; a backend
// deleted through B's admin API is gone at A; a company's cell survives a
// restart too.
func TestFleetRuntimeChanges(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	a, b := f.start(t), f.start(t)
	alice := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	root := demoauth.Login(t, a.URL, "root@erpgate.local", "acme").Access
	bobB := demoauth.Login(t, b.URL, "bob@globex.test", "globex").Access

	if r := httpt.Get(t, b.URL+"/api/v1/ledger/ping", demoauth.Bearer(alice)); r.StatusCode != 404 {
		t.Fatalf("ledger before registration: %d %s", r.StatusCode, r.Body)
	}
	// A's admin API: a backend, and globex's rate
	demo := strings.TrimPrefix(a.DemoURL, "http://")
	began := time.Now()
	admin(t, a, "POST", "/config/apps/erp/backends/ledger", `{"path":"/","versions":{"v1":{"upstreams":["http://`+demo+`/_demo"]}}}`)
	admin(t, a, "PUT", "/config/apps/erp/quota_overrides/globex", `{"rate":"7/m"}`)
	for {
		r := httpt.Get(t, b.URL+"/api/v1/ledger/ping", demoauth.Bearer(alice))
		if r.StatusCode == 200 && strings.Contains(string(r.Body), `"ok":true`) {
			break
		}
		if time.Since(began) > 10*time.Second {
			t.Fatalf("B does not serve the backend registered at A: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("backend registered at A serves at B %v after A's admin call began", time.Since(began))
	waitRate(t, b, bobB, 7, 10*time.Second)
	t.Logf("quota override made at A applies at B %v after A's admin calls began", time.Since(began))
	// B's own admin API shows what it serves
	r := httpt.Get(t, b.AdminURL+"/config/apps/erp/backends/ledger", nil)
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), demo) {
		t.Fatalf("B's config: %d %s", r.StatusCode, r.Body)
	}

	// a change at B reaches A: the override changes, then is deleted
	admin(t, b, "PATCH", "/config/apps/erp/quota_overrides/globex/rate", `"9/m"`)
	bobA := demoauth.Login(t, a.URL, "bob@globex.test", "globex").Access
	waitRate(t, a, bobA, 9, 10*time.Second)

	// A reloaded from its file (`caddy reload`): the stored entries win
	// over the file, which has neither the backend nor the override
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Load(ctx, []byte(caddyfile), "text/caddyfile"); err != nil {
		t.Fatal(err)
	}
	if r := httpt.Get(t, a.URL+"/api/v1/ledger/ping", demoauth.Bearer(alice)); r.StatusCode != 200 {
		t.Fatalf("ledger after A's reload from its file: %d %s", r.StatusCode, r.Body)
	}
	waitRate(t, a, bobA, 9, time.Second)

	// a cell for acme, then restart B: everything is still there
	if resp := putCell(t, a, root, "acme", "us"); resp.StatusCode != 200 {
		t.Fatalf("put cell: %d %s", resp.StatusCode, resp.Body)
	}
	b.Stop()
	b2 := f.start(t)
	alice2 := demoauth.Login(t, b2.URL, "alice@acme.test", "acme").Access
	bob2 := demoauth.Login(t, b2.URL, "bob@globex.test", "globex").Access
	if r := httpt.Get(t, b2.URL+"/api/v1/ledger/ping", demoauth.Bearer(alice2)); r.StatusCode != 200 {
		t.Fatalf("ledger after restart: %d %s", r.StatusCode, r.Body)
	}
	waitRate(t, b2, bob2, 9, time.Second) // from the first request on
	if c, r := cellOf(t, b2, alice2, "/api/v1/products/ping"); c != "us" {
		t.Fatalf("acme's cell after restart: %q %d %s", c, r.StatusCode, r.Body)
	}

	// the restarted instance's admin API shows what it serves (its config
	// is written with the stored entries right after the start)
	for began := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if r := httpt.Get(t, b2.AdminURL+"/config/apps/erp/backends/ledger", nil); r.StatusCode == 200 && strings.Contains(string(r.Body), demo) {
			break
		}
		if time.Since(began) > 10*time.Second {
			t.Fatal("the restarted instance's admin API does not show the stored backend")
		}
	}
	// deleted through the restarted instance's admin API: gone at A too
	admin(t, b2, "DELETE", "/config/apps/erp/backends/ledger", "")
	began = time.Now()
	for {
		r := httpt.Get(t, a.URL+"/api/v1/ledger/ping", demoauth.Bearer(alice))
		if r.StatusCode == 404 {
			break
		}
		if time.Since(began) > 10*time.Second {
			t.Fatalf("A still serves the backend deleted at B: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// a bad registration is refused by the admin API and reaches nobody
	resp := httpt.Do(t, "POST", a.AdminURL+"/config/apps/erp/backends/bad", []byte(`{"versions":{"v1":{"upstreams":["ftp://x"]}}}`), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode == 200 {
		t.Fatalf("an invalid backend was accepted: %s", resp.Body)
	}
}

// waitRate polls the caller's usage at in until its rate limit is want.
func waitRate(t *testing.T, in *stacktest.Instance, token string, want int64, within time.Duration) {
	t.Helper()
	began := time.Now()
	for {
		resp := httpt.Get(t, in.URL+"/api/v1/usage", demoauth.Bearer(token))
		var u struct {
			Rate *struct {
				Limit int64 `json:"limit"`
			} `json:"rate"`
		}
		env := resp.Envelope(t)
		if resp.StatusCode == 200 && json.Unmarshal(env.Data, &u) == nil && u.Rate != nil && u.Rate.Limit == want {
			return
		}
		if time.Since(began) > within {
			t.Fatalf("%s: rate limit is not %d after %v: %d %s", in.URL, want, within, resp.StatusCode, resp.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCellsEmbedded: on the embedded default (memory store, no Redis) a
// move applies to the instance's next request, and the assignment is read
// back.
func TestCellsEmbedded(t *testing.T) {
	t.Parallel()
	in := fleetEnv{"ERP_POSTGRES_URL": "", "ERP_REDIS_URL": "", "ERP_KEY_PREFIX": "erpgate:"}.start(t)
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	waitCell(t, in, alice, "default", 5*time.Second)
	for _, cell := range []string{"us", "eu"} {
		if resp := putCell(t, in, root, "acme", cell); resp.StatusCode != 200 {
			t.Fatalf("put %s: %d %s", cell, resp.StatusCode, resp.Body)
		}
		if c, r := cellOf(t, in, alice, "/api/v2/invoices?limit=1"); c != cell { // no waiting: this instance applies it at once
			t.Fatalf("after the move to %s: %q %d %s", cell, c, r.StatusCode, r.Body)
		}
	}
	resp := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/admin/companies/acme/cell", nil, demoauth.Bearer(root))
	if env := resp.Envelope(t); resp.StatusCode != 200 || !strings.Contains(string(env.Data), `"cell":"eu"`) {
		t.Fatalf("get: %d %s", resp.StatusCode, resp.Body)
	}
}
