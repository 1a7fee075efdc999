// Package dpidem drives erp_idempotency through the running gateway binary
// on Caddyfile.example: a create retried with its Idempotency-Key creates
// one record and the retry is a replay; the key with another body is 422;
// keys are per company; two instances on one Redis replay each other's
// answers.
package dpidem

import (
	"net/http"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const customers = "/api/v1/customers"

func create(t *testing.T, base, token, key, body string) *httpt.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return httpt.Do(t, http.MethodPost, base+customers, []byte(body), h)
}

func total(t *testing.T, base, token string) int64 {
	t.Helper()
	resp := httpt.Get(t, base+customers+"?limit=1", demoauth.Bearer(token))
	env := resp.Envelope(t)
	if resp.StatusCode != 200 || env.Pagination == nil {
		t.Fatalf("GET customers: %d %s", resp.StatusCode, resp.Body)
	}
	return env.Pagination.Total
}

func TestRetriedCreate(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	acme := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	globex := demoauth.Login(t, in.URL, "alice@acme.test", "globex").Access
	before, beforeGlobex := total(t, in.URL, acme), total(t, in.URL, globex)

	key := "create-" + testenv.Name()
	body := `{"name":"Idem Ltd","email":"idem@example.test"}`
	first := create(t, in.URL, acme, key, body)
	if first.StatusCode != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.StatusCode, first.Body)
	}
	retry := create(t, in.URL, acme, key, body)
	if retry.StatusCode != 201 || retry.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %s", retry.StatusCode, retry.Header, retry.Body)
	}
	// the same record, in the same envelope (request ids differ: meta is the edge's)
	if a, b := first.Envelope(t), retry.Envelope(t); string(a.Data) != string(b.Data) || len(a.Data) == 0 {
		t.Fatalf("replayed data %s, first %s", b.Data, a.Data)
	}
	if got := total(t, in.URL, acme); got != before+1 {
		t.Fatalf("acme has %d customers, want %d (one create)", got, before+1)
	}

	// another body under the key: 422
	other := create(t, in.URL, acme, key, `{"name":"Other","email":"o@example.test"}`)
	if env := other.Envelope(t); other.StatusCode != 422 || env.Code() != "VALIDATION_FAILED" {
		t.Fatalf("other body: %d %s", other.StatusCode, other.Body)
	}
	// a malformed key: 400
	if bad := create(t, in.URL, acme, "k\x7f", body); bad.StatusCode != 400 {
		t.Fatalf("bad key: %d %s", bad.StatusCode, bad.Body)
	}

	// globex's same key is globex's own: a create, not acme's answer
	g := create(t, in.URL, globex, key, body)
	if g.StatusCode != 201 || g.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("globex: %d %v %s", g.StatusCode, g.Header, g.Body)
	}
	if got := total(t, in.URL, globex); got != beforeGlobex+1 {
		t.Fatalf("globex has %d customers, want %d", got, beforeGlobex+1)
	}
	// a 4xx is stored too: the invalid create replays its refusal
	inv := create(t, in.URL, acme, key+"-invalid", `{"name":""}`)
	inv2 := create(t, in.URL, acme, key+"-invalid", `{"name":""}`)
	if inv.StatusCode/100 != 4 || inv2.StatusCode != inv.StatusCode || inv2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("invalid create: %d then %d %v", inv.StatusCode, inv2.StatusCode, inv2.Header)
	}
}

func TestTwoInstancesOneRedis(t *testing.T) {
	t.Parallel()
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{
		"ERP_POSTGRES_URL": testenv.Postgres(t),
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // test only: instances sharing Postgres need one
	}
	a := stacktest.Start(t, stacktest.Options{Env: env})
	b := stacktest.Start(t, stacktest.Options{Env: env})
	tok := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	key := "shared-" + testenv.Name()
	body := `{"name":"Shared Ltd","email":"shared@example.test"}`
	first := create(t, a.URL, tok, key, body)
	if first.StatusCode != 201 {
		t.Fatalf("first at a: %d %s", first.StatusCode, first.Body)
	}
	retry := create(t, b.URL, tok, key, body)
	if retry.StatusCode != 201 || retry.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry at b: %d %v %s", retry.StatusCode, retry.Header, retry.Body)
	}
	if string(first.Envelope(t).Data) != string(retry.Envelope(t).Data) {
		t.Fatal("b replayed another answer")
	}
}
