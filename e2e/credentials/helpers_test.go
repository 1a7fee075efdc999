// Package credentials drives the running binary on issue #13's "no
// ambiguous credential": one credential per request at the edge and in the
// auth service, identity-like client headers removed before anything reads
// them, no credential in the access log, no secret in the admin API's
// config (SECURITY.md categories 3, 9, 10 and "no secrets in logs").
package credentials

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// send makes a request with h as it is: repeated values stay repeated and
// header names keep their spelling (X_API_Key is sent as X_API_Key).
func send(t *testing.T, method, url string, body []byte, h http.Header) *httpt.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = append([]string(nil), vs...)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpt.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &httpt.Response{Response: resp, Body: b}
}

// expect asserts an envelope answer with status and (for errors) code.
func expect(t *testing.T, what string, resp *httpt.Response, status int, code string) *httpt.Envelope {
	t.Helper()
	env := resp.Envelope(t)
	if resp.StatusCode != status || env.Code() != code {
		t.Fatalf("%s: %s %s: got %d %s, want %d %s", what, resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, resp.Body, status, code)
	}
	return env
}

func random(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func login(t *testing.T, base string) demoauth.Tokens {
	t.Helper()
	return demoauth.Login(t, base, "alice@acme.test", "acme")
}

// createKey makes an acme API key with invoices:read.
func createKey(t *testing.T, base, access string) string {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/api-keys",
		httpt.JSON(t, map[string]any{"name": "ci", "scope": []string{"invoices:read"}}), demoauth.Bearer(access))
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(expect(t, "create key", r, http.StatusCreated, "").Data, &k); err != nil || k.Key == "" {
		t.Fatalf("create key: %s", r.Body)
	}
	return k.Key
}

// echo is a backend that records the headers of every request, by the
// value of its X-Test-Case header.
type echo struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]http.Header
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	e := &echo{seen: map[string]http.Header{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen[r.Header.Get("X-Test-Case")] = r.Header.Clone()
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *echo) headers(name string) (http.Header, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.seen[name]
	return h, ok
}

func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }
