// Package deploy runs deploy/Caddyfile, the config of the compose and
// Kubernetes deployments, as that deployment does: three gateway processes
// against one Postgres, one Redis and one NATS with JetStream. Each is
// ready, serves its metrics on the metrics listener only, keeps secrets out
// of the config it serves, and a session begun at one instance is honoured
// and ended at the others.
package deploy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// get is a GET with a short timeout: status and body, or an error.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestThreeInstances(t *testing.T) {
	cfg, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "deploy", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	natsURL := testenv.NATSURL(t)
	t.Cleanup(func() { deleteStream(t, natsURL, events.NamesFor(prefix).Stream) })
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	masterKey := base64.StdEncoding.EncodeToString(key)
	secret := "introspection-" + testenv.Name()

	var edges []*stacktest.Instance
	var metrics []string
	for range 3 {
		m := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
		edges = append(edges, stacktest.Start(t, stacktest.Options{Config: string(cfg), Env: map[string]string{
			"ERP_POSTGRES_URL":         pg,
			"ERP_REDIS_URL":            redisURL,
			"ERP_NATS_URL":             natsURL,
			"ERP_KEY_PREFIX":           prefix,
			"ERP_MASTER_KEY":           masterKey,
			"ERP_INTROSPECTION_SECRET": secret,
			"ERP_METRICS_LISTEN":       m,
			"ERP_DEMO":                 "on",
		}}))
		metrics = append(metrics, "http://"+m)
	}

	// every instance is ready: Postgres, Redis and NATS answer
	for i, in := range edges {
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, body, err := get(in.URL + "/health/ready")
			if err == nil && status == http.StatusOK && strings.Contains(body, `"success":true`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("edge %d not ready: %d %s %v", i+1, status, body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if status, body, err := get(in.URL + "/health/live"); err != nil || status != http.StatusOK {
			t.Fatalf("edge %d /health/live: %d %s %v", i+1, status, body, err)
		}
	}

	// a session begun at the first instance works at the third
	tok := demoauth.Login(t, edges[0].URL, "alice@acme.test", "acme")
	list := httpt.Get(t, edges[2].URL+"/api/v2/invoices?limit=2", demoauth.Bearer(tok.Access))
	if env := list.Envelope(t); list.StatusCode != http.StatusOK || !env.Success || env.Meta.CompanyID != "acme" {
		t.Fatalf("edge 3 with edge 1's token: %d %s", list.StatusCode, list.Body)
	}
	// bad input is an envelope error at any instance
	bad := httpt.Get(t, edges[1].URL+"/api/v2/invoices", demoauth.Bearer("not-a-token"))
	if bad.StatusCode != http.StatusUnauthorized || bad.Envelope(t).Code() != "UNAUTHENTICATED" {
		t.Fatalf("edge 2, a malformed token: %d %s", bad.StatusCode, bad.Body)
	}
	if nf := httpt.Get(t, edges[1].URL+"/no/such/route", nil); nf.StatusCode != http.StatusNotFound || nf.Envelope(t).Code() != "NOT_FOUND" {
		t.Fatalf("edge 2, an unknown route: %d %s", nf.StatusCode, nf.Body)
	}

	// a logout at the second instance ends the session at the third
	out := httpt.Do(t, http.MethodPost, edges[1].URL+"/api/v1/auth/logout", []byte(`{}`),
		map[string]string{"Authorization": "Bearer " + tok.Access, "Content-Type": "application/json"})
	if out.StatusCode != http.StatusOK {
		t.Fatalf("logout at edge 2: %d %s", out.StatusCode, out.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := httpt.Get(t, edges[2].URL+"/api/v2/invoices?limit=1", demoauth.Bearer(tok.Access))
		if r.StatusCode == http.StatusUnauthorized && r.Envelope(t).Code() == "TOKEN_REVOKED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge 3 still answers a token logged out at edge 2: %d %s", r.StatusCode, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// metrics on the metrics listener, and nothing else there
	for i, m := range metrics {
		status, body, err := get(m + "/metrics")
		if err != nil || status != http.StatusOK || !strings.Contains(body, "caddy_http_requests_total") {
			t.Fatalf("edge %d metrics: %d %v %.300s", i+1, status, err, body)
		}
		if status, _, err := get(m + "/config/"); err != nil || status != http.StatusNotFound {
			t.Fatalf("edge %d metrics listener serves /config/: %d %v", i+1, status, err)
		}
		if status, _, err := get(m + "/health/ready"); err != nil || status != http.StatusNotFound {
			t.Fatalf("edge %d metrics listener serves the edge: %d %v", i+1, status, err)
		}
	}
	if !strings.Contains(mustGet(t, metrics[0]+"/metrics"), "erpgate_") {
		t.Fatalf("no erpgate_ metrics on the metrics listener")
	}

	// secrets stay out of the config the admin API serves and of the logs
	for i, in := range edges {
		_, body, err := get(in.AdminURL + "/config/")
		if err != nil || !strings.Contains(body, "{env.ERP_MASTER_KEY}") {
			t.Fatalf("edge %d admin config: %v %.200s", i+1, err, body)
		}
		for _, s := range []string{masterKey, secret} {
			if strings.Contains(body, s) || strings.Contains(in.Logs(), s) {
				t.Fatalf("edge %d: a secret in its config or logs", i+1)
			}
		}
	}
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	status, body, err := get(url)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, status, err)
	}
	return body
}

// deleteStream removes the test's event stream from the shared NATS.
func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && err != jetstream.ErrStreamNotFound {
		t.Logf("cleanup: delete stream %s: %v", stream, err)
	}
}
