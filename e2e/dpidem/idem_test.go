// Package dpidem drives erp_idempotency through the running gateway binary
// on Caddyfile.example: a create retried with its Idempotency-Key creates
// one record and the retry is a replay; the key with another body is 422;
// keys are per company; two instances on one Redis replay each other's
// answers.
package dpidem

import (
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const customers = "/api/v1/customers"

func create(t *testing.T, base, token, key, body string) *httpt.Response {
	t.Helper()
	return post(t, base+customers, token, key, body)
}

func post(t *testing.T, url, token, key, body string) *httpt.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + token}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return httpt.Do(t, http.MethodPost, url, []byte(body), h)
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
	globex := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access
	before := total(t, in.URL, acme)

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
	// a malformed key (over 255 characters): 400
	if bad := create(t, in.URL, acme, strings.Repeat("k", 256), body); bad.StatusCode != 400 {
		t.Fatalf("bad key: %d %s", bad.StatusCode, bad.Body)
	}

	// globex's key is globex's own: acme and globex send the same invoice
	// (same fingerprint) under the same key; globex's is created, not
	// answered with acme's stored refusal (cus_globex_001 is not acme's)
	invKey := "invoice-" + testenv.Name()
	inv := `{"customer_id":"cus_globex_001","amount":5,"currency":"USD"}`
	ga := post(t, in.URL+"/api/v1/invoices", acme, invKey, inv)
	if ga.StatusCode/100 != 4 {
		t.Fatalf("acme's invoice for globex's customer: %d %s", ga.StatusCode, ga.Body)
	}
	g := post(t, in.URL+"/api/v1/invoices", globex, invKey, inv)
	if g.StatusCode != 201 || g.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("globex got acme's answer: %d %v %s", g.StatusCode, g.Header, g.Body)
	}
	if g2 := post(t, in.URL+"/api/v1/invoices", globex, invKey, inv); g2.StatusCode != 201 || g2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("globex's retry: %d %v", g2.StatusCode, g2.Header)
	}
	// a 4xx is stored too: the invalid create replays its refusal
	bad1 := create(t, in.URL, acme, key+"-invalid", `{"name":""}`)
	bad2 := create(t, in.URL, acme, key+"-invalid", `{"name":""}`)
	if bad1.StatusCode/100 != 4 || bad2.StatusCode != bad1.StatusCode || bad2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("invalid create: %d then %d %v", bad1.StatusCode, bad2.StatusCode, bad2.Header)
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
