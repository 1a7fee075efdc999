package graphql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// apq is the extensions member of an automatic persisted query.
func apq(hash string) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hash}}
}

// notFound checks Apollo's answer to an unknown hash: the message clients
// look for, code NOT_FOUND, nothing executed.
func notFound(t *testing.T, a *answer) {
	t.Helper()
	if a.Status != 200 || len(a.Errors) != 1 || a.Errors[0].Message != "PersistedQueryNotFound" || a.code() != "NOT_FOUND" {
		t.Fatalf("want PersistedQueryNotFound: %s", a)
	}
	if d, ok := a.Top["data"]; ok && string(d) != "null" {
		t.Fatalf("data for an unknown hash: %s", a.Raw)
	}
}

// TestAutomaticPersistedQueries: Apollo's APQ flow over POST and GET, a hash
// that does not match its text refused, and GET refusing mutations.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	tok := login(t, in.URL).aliceAcme

	const q = `query Invoice($id: ID!) { invoice(id: $id) { id number customer { id } } }`
	h := sha(q)
	vars := map[string]any{"id": "inv_acme_0007"}
	check := func(a *answer) {
		t.Helper()
		if a.Status != 200 || len(a.Errors) > 0 || at(t, a.data(t), "invoice", "number") != "ACME-0007" {
			t.Fatalf("persisted query: %s", a)
		}
	}

	// the hash alone, before the server knows it
	notFound(t, post(t, in.URL, tok, request{Variables: vars, Extensions: apq(h)}, nil))
	// the client sends it again with the text: it runs and is kept
	check(post(t, in.URL, tok, request{Query: q, Variables: vars, Extensions: apq(h)}, nil))
	// from now on the hash is enough, over POST and over GET
	check(post(t, in.URL, tok, request{Variables: vars, Extensions: apq(h)}, nil))
	ext, _ := json.Marshal(apq(h))
	v, _ := json.Marshal(vars)
	check(get(t, in.URL, tok, url.Values{"extensions": {string(ext)}, "variables": {string(v)}}, nil))
	// another company's caller shares the text, not the data
	bob := login(t, in.URL).bobGlobex
	a := post(t, in.URL, bob, request{Variables: map[string]any{"id": "inv_globex_0002"}, Extensions: apq(h)}, nil)
	if a.Status != 200 || len(a.Errors) > 0 || at(t, a.data(t), "invoice", "number") != "GLOBEX-0002" {
		t.Fatalf("globex with acme's registered hash: %s", a)
	}

	// a hash that is not the text's: refused, and the hash stays unknown
	const other = `{ customers(first: 1) { nodes { id } } }`
	wrong := sha(other + " ")
	a = post(t, in.URL, tok, request{Query: other, Extensions: apq(wrong)}, nil)
	if a.Status != 400 || a.code() != "BAD_REQUEST" {
		t.Fatalf("a mismatched hash: %s", a)
	}
	if _, ok := a.Top["data"]; ok {
		t.Fatalf("data with a mismatched hash: %s", a.Raw)
	}
	notFound(t, post(t, in.URL, tok, request{Extensions: apq(wrong)}, nil))
	// unknown over GET too
	ext, _ = json.Marshal(apq(sha("{ __typename }")))
	notFound(t, get(t, in.URL, tok, url.Values{"extensions": {string(ext)}}, nil))

	// GET runs queries only: a mutation is 405 with Allow: POST, and nothing is deleted
	a = get(t, in.URL, tok, url.Values{"query": {`mutation { deleteInvoice(id: "inv_acme_0009") }`}}, nil)
	if a.Status != 405 || a.Header.Get("Allow") != "POST" || a.code() != "BAD_REQUEST" {
		t.Fatalf("GET with a mutation: %s %v", a, a.Header)
	}
	if _, ok := a.Top["data"]; ok {
		t.Fatalf("data for a GET mutation: %s", a.Raw)
	}
	if s := restStatus(t, in.URL, tok, "/api/v2/invoices/inv_acme_0009"); s != 200 {
		t.Fatalf("the invoice after a GET mutation: %d", s)
	}
	// a document with a query and a mutation: GET runs the query it names, never the mutation
	const both = `query Q { invoice(id: "inv_acme_0009") { number } } mutation M { deleteInvoice(id: "inv_acme_0009") }`
	a = get(t, in.URL, tok, url.Values{"query": {both}, "operationName": {"Q"}}, nil)
	if a.Status != 200 || at(t, a.data(t), "invoice", "number") != "ACME-0009" {
		t.Fatalf("GET naming the query: %s", a)
	}
	if a = get(t, in.URL, tok, url.Values{"query": {both}, "operationName": {"M"}}, nil); a.Status != 405 {
		t.Fatalf("GET naming the mutation: %s", a)
	}
	if s := restStatus(t, in.URL, tok, "/api/v2/invoices/inv_acme_0009"); s != 200 {
		t.Fatalf("the invoice after a GET mutation: %d", s)
	}
	// a plain query over GET runs
	a = get(t, in.URL, tok, url.Values{"query": {q}, "variables": {string(v)}, "operationName": {"Invoice"}}, nil)
	check(a)
}

// persistedOnly is Caddyfile.example with a trusted-documents manifest and
// the free plan (globex) on persisted queries only.
func persistedOnly(t *testing.T, manifest string) string {
	t.Helper()
	cfg := stacktest.ExampleConfig(t)
	i := strings.Index(cfg, "erp_graphql {")
	if i < 0 {
		t.Fatal("Caddyfile.example has no erp_graphql block")
	}
	i += len("erp_graphql {")
	cfg = cfg[:i] + "\n\t\t\tpersisted_queries " + manifest + cfg[i:]
	j := strings.Index(cfg[i:], "plan free {")
	if j < 0 {
		t.Fatal("erp_graphql has no plan free")
	}
	j += i + len("plan free {")
	return cfg[:j] + "\n\t\t\t\tpersisted_only" + cfg[j:]
}

// TestPersistedOnlyPlan: a plan with persisted_only runs the manifest's
// queries by hash and refuses any query text, an unknown hash and an APQ
// registration with 403; other plans are not affected.
func TestPersistedOnlyPlan(t *testing.T) {
	t.Parallel()
	const trusted = `query Customers { customers(first: 2, sort: "id") { nodes { id } } }`
	manifest := filepath.Join(t.TempDir(), "trusted.json")
	if err := os.WriteFile(manifest, []byte(`{"`+sha(trusted)+`": `+strings.TrimSpace(string(mustJSON(t, trusted)))+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := stacktest.Start(t, stacktest.Options{Config: persistedOnly(t, manifest)})
	u := login(t, in.URL)

	refused := func(a *answer) {
		t.Helper()
		if a.Status != 403 || len(a.Errors) != 1 || a.code() != "FORBIDDEN" || !strings.Contains(a.Errors[0].Message, "only persisted queries") {
			t.Fatalf("want 403 persisted queries only: %s", a)
		}
		if _, ok := a.Top["data"]; ok {
			t.Fatalf("data in a refusal: %s", a.Raw)
		}
	}
	// globex (free): text refused, even the manifest's own text
	refused(post(t, in.URL, u.bobGlobex, request{Query: `{ customers(first: 1) { nodes { id } } }`}, nil))
	refused(post(t, in.URL, u.bobGlobex, request{Query: trusted}, nil))
	// no APQ registration either
	const fresh = `{ invoices(first: 1) { nodes { id } } }`
	refused(post(t, in.URL, u.bobGlobex, request{Query: fresh, Extensions: apq(sha(fresh))}, nil))
	refused(post(t, in.URL, u.bobGlobex, request{Extensions: apq(sha(fresh))}, nil))

	// the manifest's hash runs, over POST and GET
	for _, a := range []*answer{
		post(t, in.URL, u.bobGlobex, request{Extensions: apq(sha(trusted))}, nil),
		get(t, in.URL, u.bobGlobex, url.Values{"extensions": {string(mustJSON(t, apq(sha(trusted))))}}, nil),
	} {
		if a.Status != 200 || len(a.Errors) > 0 {
			t.Fatalf("the manifest's query: %s", a)
		}
		if got := ids(t, list(t, a.data(t), "customers", "nodes"), "id"); len(got) != 2 || got[0] != "cus_globex_001" || got[1] != "cus_globex_002" {
			t.Fatalf("the manifest's query for globex: %v", got)
		}
	}

	// acme (standard) still sends text, and may use the manifest too
	d := query(t, in.URL, u.aliceAcme, `{ customers(first: 1, sort: "id") { nodes { id } } }`, nil)
	if got := ids(t, list(t, d, "customers", "nodes"), "id"); len(got) != 1 || got[0] != "cus_acme_001" {
		t.Fatalf("acme: %v", got)
	}
	a := post(t, in.URL, u.aliceAcme, request{Extensions: apq(sha(trusted))}, nil)
	if a.Status != 200 || len(a.Errors) > 0 || len(list(t, a.data(t), "customers", "nodes")) != 2 {
		t.Fatalf("acme with the manifest's hash: %s", a)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPersistedQueriesSharedInRedis: with Redis, a query registered at one
// instance runs by its hash at another (the APQ store is shared), under the
// erp block's key prefix.
func TestPersistedQueriesSharedInRedis(t *testing.T) {
	t.Parallel()
	redisURL, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	env := map[string]string{
		"ERP_POSTGRES_URL": testenv.Postgres(t),
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // test only: instances sharing Postgres need one
	}
	a := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: env})
	b := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: env})
	tok := login(t, a.URL).aliceAcme

	q := `query Shared { invoice(id: "inv_acme_0011") { number } } # ` + testenv.Name()
	h := sha(q)
	notFound(t, post(t, b.URL, tok, request{Extensions: apq(h)}, nil))
	if r := post(t, a.URL, tok, request{Query: q, Extensions: apq(h)}, nil); r.Status != 200 || len(r.Errors) > 0 {
		t.Fatalf("registering at a: %s", r)
	}
	r := post(t, b.URL, tok, request{Extensions: apq(h)}, nil)
	if r.Status != 200 || len(r.Errors) > 0 || at(t, r.data(t), "invoice", "number") != "ACME-0011" {
		t.Fatalf("the hash at b: %s", r)
	}
	got, err := rdb.Get(context.Background(), prefix+"gql:apq:"+h).Result()
	if err != nil || got != q {
		t.Fatalf("Redis holds %q (%v) under %s", got, err, prefix+"gql:apq:"+h)
	}
}
