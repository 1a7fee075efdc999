// Package exportjobs drives erp_export_jobs through the running gateway
// binary on Caddyfile.example: a job's file equals the streamed export, its
// download link works without a bearer until it expires and not when
// tampered with, jobs are per company and need the backend's read scope,
// bad bodies name their field, a company's active jobs are bounded, and
// the process's RSS stays within 64 MiB of growth, and with Redis a job made at one instance is seen, downloaded and deleted at
// another.
package exportjobs

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/redisproc"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

type job struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Links struct {
		Self     string `json:"self"`
		Download string `json:"download"`
	} `json:"links"`
}

func decodeJob(t *testing.T, r *httpt.Response) job {
	t.Helper()
	var j job
	if err := json.Unmarshal(r.Envelope(t).Data, &j); err != nil || j.ID == "" {
		t.Fatalf("no job in %d %s", r.StatusCode, r.Body)
	}
	return j
}

func create(t *testing.T, base string, hdr map[string]string, body any) *httpt.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	return httpt.Do(t, http.MethodPost, base+"/api/v1/exports", httpt.JSON(t, body), h)
}

// waitDone polls the job at base until it is done (failed fails the test).
func waitDone(t *testing.T, base string, cred map[string]string, id string) job {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r := httpt.Get(t, base+"/api/v1/exports/"+id, cred)
		if r.StatusCode != 200 {
			t.Fatalf("status of %s: %d %s", id, r.StatusCode, r.Body)
		}
		j := decodeJob(t, r)
		switch j.Status {
		case "done":
			return j
		case "failed":
			t.Fatalf("job %s failed: %s", id, r.Body)
		case "queued", "running":
		default:
			t.Fatalf("job %s: status %q", id, j.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not done in time: %s", id, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func expectError(t *testing.T, what string, r *httpt.Response, status int, code, field string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s: %d, want %d: %s", what, r.StatusCode, status, r.Body)
	}
	env := r.Envelope(t)
	if env.Success || env.Code() != code || (field != "" && env.Errors[0].Field != field) {
		t.Fatalf("%s: want %s (field %q): %s", what, code, field, r.Body)
	}
}

func start(t *testing.T, env map[string]string) *stacktest.Instance {
	if env == nil {
		env = map[string]string{}
	}
	if env["ERP_EXPORT_DIR"] == "" {
		env["ERP_EXPORT_DIR"] = t.TempDir()
	}
	return stacktest.Start(t, stacktest.Options{Env: env})
}

func TestExportJobs(t *testing.T) {
	in := start(t, nil)
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex").Access

	// a 50,000-line batch of the computed journal, as NDJSON, as a job and
	// streamed; the process's RSS grows by less than 64 MiB doing both
	// (memory holds a page, not the export; bench -only export measures a
	// million rows)
	if r := httpt.Get(t, in.URL+"/api/v1/customers/export", demoauth.Bearer(alice)); r.StatusCode != 200 { // warm-up
		t.Fatalf("warm-up export: %d", r.StatusCode)
	}
	stopRSS := sampleRSS(t, in.Pid())
	r := create(t, in.URL, demoauth.Bearer(alice), map[string]string{"backend": "journal", "format": "ndjson", "filter": "batch:eq:B03"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	j := decodeJob(t, r)
	if j.Links.Self != "/api/v1/exports/"+j.ID || (j.Status != "queued" && j.Status != "running" && j.Status != "done") {
		t.Fatalf("created: %s", r.Body)
	}
	j = waitDone(t, in.URL, demoauth.Bearer(alice), j.ID)
	if j.Rows != 50000 || j.Bytes == 0 || j.Links.Download == "" {
		t.Fatalf("done: %+v", j)
	}
	streamed := httpt.Get(t, in.URL+"/api/v1/journal/export?format=ndjson&filter=batch:eq:B03", demoauth.Bearer(alice))
	if streamed.StatusCode != 200 || bytes.Count(streamed.Body, []byte("\n")) != 50000 {
		t.Fatalf("streamed export: %d, %d lines", streamed.StatusCode, bytes.Count(streamed.Body, []byte("\n")))
	}
	got := httpt.Get(t, in.URL+j.Links.Download, nil) // no bearer
	if got.StatusCode != 200 || got.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("download: %d %q %.300s", got.StatusCode, got.Header.Get("Content-Type"), got.Body)
	}
	if !bytes.Equal(got.Body, streamed.Body) || int64(len(got.Body)) != j.Bytes {
		t.Fatalf("download: %d bytes, the streamed export %d, the job says %d", len(got.Body), len(streamed.Body), j.Bytes)
	}
	before, peak := stopRSS()
	t.Logf("RSS before %d KiB, peak %d KiB, growth %d KiB", before, peak, peak-before)
	if peak-before > 64<<10 {
		t.Fatalf("RSS grew by %d KiB for a 50,000-row job, export and download, more than 64 MiB", peak-before)
	}

	// CSV of another backend and version
	r = create(t, in.URL, demoauth.Bearer(alice), map[string]string{"backend": "customers", "version": "v2", "format": "csv", "sort": "-id"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create csv: %d %s", r.StatusCode, r.Body)
	}
	csvJob := waitDone(t, in.URL, demoauth.Bearer(alice), decodeJob(t, r).ID)
	got = httpt.Get(t, in.URL+csvJob.Links.Download, nil)
	streamed = httpt.Get(t, in.URL+"/api/v2/customers/export?format=csv&sort=-id", demoauth.Bearer(alice))
	if got.StatusCode != 200 || !strings.HasPrefix(got.Header.Get("Content-Type"), "text/csv") || !bytes.Equal(got.Body, streamed.Body) || csvJob.Rows != 25 {
		t.Fatalf("csv download: %d %q, %d rows, equal to the streamed export: %v", got.StatusCode, got.Header.Get("Content-Type"), csvJob.Rows, bytes.Equal(got.Body, streamed.Body))
	}

	t.Run("tampered links", func(t *testing.T) {
		u, err := url.Parse(j.Links.Download)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		tamper := func(what string, f func(q url.Values) string) {
			t.Helper()
			c := url.Values{}
			for k, v := range q {
				c[k] = append([]string(nil), v...)
			}
			path := f(c)
			r := httpt.Get(t, in.URL+path+"?"+c.Encode(), nil)
			expectError(t, what, r, http.StatusForbidden, "FORBIDDEN", "")
		}
		flip := func(s string) string {
			b := []byte(s)
			if b[3] == 'A' {
				b[3] = 'B'
			} else {
				b[3] = 'A'
			}
			return string(b)
		}
		tamper("signature changed", func(q url.Values) string { q.Set("sig", flip(q.Get("sig"))); return u.Path })
		tamper("expiry moved", func(q url.Values) string {
			q.Set("expires", q.Get("expires")+"0")
			return u.Path
		})
		tamper("other company", func(q url.Values) string { q.Set("company", "globex"); return u.Path })
		tamper("other job", func(q url.Values) string { return "/api/v1/exports/" + csvJob.ID + "/download" })
		tamper("no signature", func(q url.Values) string { q.Del("sig"); return u.Path })
	})

	t.Run("expired link", func(t *testing.T) {
		r := httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID+"?link_ttl=1s", demoauth.Bearer(alice))
		short := decodeJob(t, r)
		if short.Links.Download == "" {
			t.Fatalf("no link: %s", r.Body)
		}
		time.Sleep(2100 * time.Millisecond)
		expectError(t, "expired link", httpt.Get(t, in.URL+short.Links.Download, nil), http.StatusGone, "TOKEN_EXPIRED", "")
		expectError(t, "link_ttl beyond the configured one", httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID+"?link_ttl=48h", demoauth.Bearer(alice)),
			http.StatusBadRequest, "BAD_REQUEST", "link_ttl")
	})

	t.Run("other company", func(t *testing.T) {
		expectError(t, "globex reads acme's job", httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID, demoauth.Bearer(bob)), http.StatusNotFound, "NOT_FOUND", "")
		expectError(t, "globex deletes acme's job", httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/exports/"+j.ID, nil, demoauth.Bearer(bob)),
			http.StatusNotFound, "NOT_FOUND", "")
		if r := httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID, demoauth.Bearer(alice)); r.StatusCode != 200 {
			t.Fatalf("acme's job after globex's attempts: %d", r.StatusCode)
		}
	})

	t.Run("missing scope", func(t *testing.T) {
		r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/api-keys",
			httpt.JSON(t, map[string]any{"name": "ci", "scope": []string{"invoices:read"}}), demoauth.Bearer(alice))
		var k struct {
			Key string `json:"key"`
		}
		if r.StatusCode != http.StatusCreated || json.Unmarshal(r.Envelope(t).Data, &k) != nil || k.Key == "" {
			t.Fatalf("api key: %d %s", r.StatusCode, r.Body)
		}
		expectError(t, "customers with invoices:read", create(t, in.URL, map[string]string{"X-API-Key": k.Key}, map[string]string{"backend": "customers"}),
			http.StatusForbidden, "FORBIDDEN", "")
		// the key's own backend works
		r = create(t, in.URL, map[string]string{"X-API-Key": k.Key}, map[string]string{"backend": "invoices", "format": "csv"})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("invoices with invoices:read: %d %s", r.StatusCode, r.Body)
		}
		waitDone(t, in.URL, demoauth.Bearer(alice), decodeJob(t, r).ID)
	})

	t.Run("bad requests", func(t *testing.T) {
		bearer := demoauth.Bearer(alice)
		for _, c := range []struct {
			body  string
			field string
		}{
			{`{}`, "backend"},
			{`{"backend":"nope"}`, "backend"},
			{`{"backend":"customers","version":"v7"}`, "version"},
			{`{"backend":"customers","format":"xml"}`, "format"},
			{`{"backend":"customers","limit":5}`, "limit"},
			{`{"backend":"customers","filter":7}`, "filter"},
			{`[1,2]`, ""},
			{`not json`, ""},
		} {
			h := map[string]string{"Content-Type": "application/json", "Authorization": bearer["Authorization"]}
			r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/exports", []byte(c.body), h)
			expectError(t, c.body, r, http.StatusBadRequest, "BAD_REQUEST", c.field)
		}
		// a filter the backend refuses: the export's own 400, at once
		r := create(t, in.URL, bearer, map[string]string{"backend": "customers", "filter": "email:eq:x"})
		if r.StatusCode != http.StatusBadRequest || r.Envelope(t).Success {
			t.Fatalf("refused filter: %d %s", r.StatusCode, r.Body)
		}
		expectError(t, "no credential", create(t, in.URL, nil, map[string]string{"backend": "customers"}), http.StatusUnauthorized, "UNAUTHENTICATED", "")
		expectError(t, "status without credential", httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID, nil), http.StatusUnauthorized, "UNAUTHENTICATED", "")
		expectError(t, "unknown job", httpt.Get(t, in.URL+"/api/v1/exports/exp_aaaaaaaaaaaaaaaaaaaaaaaaaa", bearer), http.StatusNotFound, "NOT_FOUND", "")
	})

	t.Run("bounded and cancelled", func(t *testing.T) {
		// two whole journals (a million lines each) keep acme's two slots busy
		var ids []string
		for i := 0; i < 2; i++ {
			r := create(t, in.URL, demoauth.Bearer(alice), map[string]string{"backend": "journal"})
			if r.StatusCode != http.StatusAccepted {
				t.Fatalf("long job %d: %d %s", i, r.StatusCode, r.Body)
			}
			ids = append(ids, decodeJob(t, r).ID)
		}
		r := create(t, in.URL, demoauth.Bearer(alice), map[string]string{"backend": "customers"})
		expectError(t, "a third active job", r, http.StatusTooManyRequests, "RATE_LIMITED", "")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// another company has its own slots
		if r := create(t, in.URL, demoauth.Bearer(bob), map[string]string{"backend": "customers"}); r.StatusCode != http.StatusAccepted {
			t.Fatalf("globex's job: %d %s", r.StatusCode, r.Body)
		}
		for _, id := range ids {
			r := httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/exports/"+id, nil, demoauth.Bearer(alice))
			if r.StatusCode != 200 {
				t.Fatalf("delete %s: %d %s", id, r.StatusCode, r.Body)
			}
			expectError(t, "deleted job", httpt.Get(t, in.URL+"/api/v1/exports/"+id, demoauth.Bearer(alice)), http.StatusNotFound, "NOT_FOUND", "")
		}
		// the slots are free again
		r = create(t, in.URL, demoauth.Bearer(alice), map[string]string{"backend": "customers"})
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("after cancelling: %d %s", r.StatusCode, r.Body)
		}
		waitDone(t, in.URL, demoauth.Bearer(alice), decodeJob(t, r).ID)
	})

	t.Run("deleted job's link", func(t *testing.T) {
		if r := httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/exports/"+csvJob.ID, nil, demoauth.Bearer(alice)); r.StatusCode != 200 {
			t.Fatalf("delete: %d %s", r.StatusCode, r.Body)
		}
		expectError(t, "link of a deleted job", httpt.Get(t, in.URL+csvJob.Links.Download, nil), http.StatusGone, "NOT_FOUND", "")
	})
}

// TestExportJobsAcrossInstances: with Redis, a job made at one instance is
// seen, downloaded (shared directory, link key shared through Redis) and
// deleted at another.
func TestExportJobsAcrossInstances(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	pgURL := testenv.Postgres(t) // one auth store: an API key made at a works at b
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := func() map[string]string {
		return map[string]string{"ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix, "ERP_POSTGRES_URL": pgURL,
			"ERP_MASTER_KEY": base64.StdEncoding.EncodeToString(master), "ERP_EXPORT_DIR": dir}
	}
	a := start(t, env())
	b := start(t, env())
	// an API key: verified at each instance against the shared store (an
	// access token would need b to have learnt a's signing key first)
	access := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	kr := httpt.Do(t, http.MethodPost, a.URL+"/api/v1/auth/api-keys",
		httpt.JSON(t, map[string]any{"name": "fleet", "scope": []string{"invoices:read"}}), demoauth.Bearer(access))
	var k struct {
		Key string `json:"key"`
	}
	if kr.StatusCode != http.StatusCreated || json.Unmarshal(kr.Envelope(t).Data, &k) != nil || k.Key == "" {
		t.Fatalf("api key: %d %s", kr.StatusCode, kr.Body)
	}
	key := map[string]string{"X-API-Key": k.Key}

	r := create(t, a.URL, key, map[string]string{"backend": "invoices", "version": "v1", "format": "ndjson", "filter": "status:eq:paid"})
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create at a: %d %s", r.StatusCode, r.Body)
	}
	j := waitDone(t, b.URL, key, decodeJob(t, r).ID)
	got := httpt.Get(t, b.URL+j.Links.Download, nil)
	want := httpt.Get(t, a.URL+"/api/v1/invoices/export?format=ndjson&filter=status:eq:paid", key)
	if got.StatusCode != 200 || !bytes.Equal(got.Body, want.Body) || j.Rows == 0 {
		t.Fatalf("download at b: %d, %d rows, equal: %v", got.StatusCode, j.Rows, bytes.Equal(got.Body, want.Body))
	}
	if r := httpt.Do(t, http.MethodDelete, b.URL+"/api/v1/exports/"+j.ID, nil, key); r.StatusCode != 200 {
		t.Fatalf("delete at b: %d %s", r.StatusCode, r.Body)
	}
	expectError(t, "deleted at b, read at a", httpt.Get(t, a.URL+"/api/v1/exports/"+j.ID, key), http.StatusNotFound, "NOT_FOUND", "")
}

// TestExportJobsRedisDown: with the job store's Redis gone, creating,
// reading, deleting a job and following its download link answer 503
// SERVICE_UNAVAILABLE with Retry-After, naming nothing of the store; once
// Redis is back (empty: it keeps nothing), the job is gone (404) and a new
// one runs to its download.
func TestExportJobsRedisDown(t *testing.T) {
	srv := redisproc.Start(t)
	in := start(t, map[string]string{"ERP_REDIS_URL": srv.URL, "ERP_KEY_PREFIX": "expdown:"})
	alice := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	body := map[string]string{"backend": "invoices", "version": "v1", "format": "ndjson"}
	r := create(t, in.URL, alice, body)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	j := waitDone(t, in.URL, alice, decodeJob(t, r).ID)

	srv.Stop()
	down := func(what string, r *httpt.Response) {
		t.Helper()
		expectError(t, what, r, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", what)
		}
		if bytes.Contains(r.Body, []byte("redis")) || bytes.Contains(r.Body, []byte("127.0.0.1")) {
			t.Fatalf("%s: the answer names the store: %s", what, r.Body)
		}
	}
	down("create", create(t, in.URL, alice, body))
	down("status", httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID, alice))
	down("download", httpt.Get(t, in.URL+j.Links.Download, nil))
	down("delete", httpt.Do(t, http.MethodDelete, in.URL+"/api/v1/exports/"+j.ID, nil, alice))

	srv.Restart()
	// the store answers again (the client reconnects at its next command)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = httpt.Get(t, in.URL+"/api/v1/exports/"+j.ID, alice)
		if r.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	expectError(t, "the job after Redis came back empty", r, http.StatusNotFound, "NOT_FOUND", "")
	r = create(t, in.URL, alice, body)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("create after Redis came back: %d %s", r.StatusCode, r.Body)
	}
	j = waitDone(t, in.URL, alice, decodeJob(t, r).ID)
	if got := httpt.Get(t, in.URL+j.Links.Download, nil); got.StatusCode != 200 || int64(len(got.Body)) != j.Bytes {
		t.Fatalf("download after Redis came back: %d, %d bytes of %d", got.StatusCode, len(got.Body), j.Bytes)
	}
}
