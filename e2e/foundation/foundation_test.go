// Package foundation drives the running gateway binary (Caddyfile.example and
// small configs) over HTTP: the envelope, edge errors, the demo ERP hop,
// adapt → JSON equivalence and reload behaviour.
package foundation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// envelopeOnly is the edge without authentication in front of the demo
// ERP: the envelope's behaviour with every kind of backend answer.
const envelopeOnly = `{
	admin {$ERP_ADMIN}
}
http://{$ERP_LISTEN} {
	request_body {
		max_size 10MB
	}
	route {
		erp_envelope
		handle_path /api/* {
			reverse_proxy {$ERP_DEMO_LISTEN} {
				header_up Host {upstream_hostport}
				header_up X-ERP-Company-ID acme
			}
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}
http://{$ERP_DEMO_LISTEN} {
	erp_demo {
		insecure_skip_assertion
	}
}
`

func TestNotFoundIsAnEnvelope(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	alice := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	raw := stacktest.Start(t, stacktest.Options{Config: envelopeOnly})
	resp := httpt.Get(t, in.URL+"/no/such/route", nil)
	env := resp.Envelope(t)
	if resp.StatusCode != 404 || env.Success || env.Code() != "NOT_FOUND" {
		t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
	}
	if _, err := uuid.Parse(env.Meta.RequestID); err != nil || resp.Header.Get("X-Request-ID") != env.Meta.RequestID {
		t.Fatalf("request id %q, header %q", env.Meta.RequestID, resp.Header.Get("X-Request-ID"))
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}

	t.Run("client request id kept, invalid one replaced", func(t *testing.T) {
		id := "7c9e6679-7425-40de-944b-e07fc1f90ae7"
		env := httpt.Get(t, in.URL+"/no/such/route", map[string]string{"X-Request-ID": id}).Envelope(t)
		if env.Meta.RequestID != id {
			t.Fatalf("request id %q, want %q", env.Meta.RequestID, id)
		}
		env = httpt.Get(t, in.URL+"/no/such/route", map[string]string{"X-Request-ID": "<script>"}).Envelope(t)
		if u, err := uuid.Parse(env.Meta.RequestID); err != nil || u.Version() != 7 {
			t.Fatalf("invalid client id not replaced by a UUIDv7: %q", env.Meta.RequestID)
		}
	})

	t.Run("demo collection with pagination", func(t *testing.T) {
		resp := httpt.Get(t, in.URL+"/api/v1/invoices?page=2&limit=10", alice)
		env := resp.Envelope(t)
		var items []map[string]any
		if err := json.Unmarshal(env.Data, &items); err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		p := env.Pagination
		if len(items) != 10 || p == nil || p.Page != 2 || p.Limit != 10 || p.Total < 20 || !p.HasNext {
			t.Fatalf("items %d, pagination %+v", len(items), p)
		}
		last := httpt.Get(t, fmt.Sprintf("%s/api/v1/invoices?page=%d&limit=10", in.URL, (p.Total+9)/10), alice).Envelope(t)
		if last.Pagination == nil || last.Pagination.HasNext {
			t.Fatalf("last page pagination %+v", last.Pagination)
		}
	})

	t.Run("request id reaches the backend", func(t *testing.T) {
		id := "2f1c1d6e-8a3b-4c55-9d7e-0a1b2c3d4e5f"
		resp := httpt.Get(t, raw.URL+"/api/_demo/echo-headers", map[string]string{"X-Request-ID": id})
		if !bytes.Contains(resp.Body, []byte(id)) {
			t.Fatalf("backend did not see the request id: %s", resp.Body)
		}
	})

	t.Run("validation errors keep their fields", func(t *testing.T) {
		resp := httpt.Do(t, "POST", in.URL+"/api/v1/invoices", []byte(`{"customer_id":"nope","amount":-1,"currency":"XXX"}`), alice)
		env := resp.Envelope(t)
		if resp.StatusCode != 422 || len(env.Errors) < 2 {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
		fields := map[string]bool{}
		for _, e := range env.Errors {
			fields[e.Field] = true
			if e.Code != "VALIDATION_FAILED" {
				t.Fatalf("code %s", e.Code)
			}
		}
		if !fields["amount"] || !fields["currency"] {
			t.Fatalf("fields %v", fields)
		}
	})

	t.Run("malformed body", func(t *testing.T) {
		resp := httpt.Do(t, "POST", in.URL+"/api/v1/invoices", []byte(`{"amount":`), alice)
		if env := resp.Envelope(t); resp.StatusCode != 400 || env.Code() != "BAD_REQUEST" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("body too large", func(t *testing.T) {
		resp := httpt.Do(t, "POST", in.URL+"/api/v1/invoices", bytes.Repeat([]byte("a"), 11<<20), alice)
		if env := resp.Envelope(t); resp.StatusCode != 413 || env.Code() != "PAYLOAD_TOO_LARGE" {
			t.Fatalf("got %d %.300s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("broken JSON from the backend", func(t *testing.T) {
		resp := httpt.Get(t, raw.URL+"/api/_demo/broken", nil)
		if env := resp.Envelope(t); resp.StatusCode != 502 || env.Code() != "UPSTREAM_UNAVAILABLE" {
			t.Fatalf("got %d %s", resp.StatusCode, resp.Body)
		}
	})

	t.Run("non-JSON untouched", func(t *testing.T) {
		direct := httpt.Get(t, raw.DemoURL+"/_demo/text", nil)
		via := httpt.Get(t, raw.URL+"/api/_demo/text", nil)
		if via.StatusCode != 200 || !bytes.Equal(direct.Body, via.Body) || via.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
			t.Fatalf("text changed: %q vs %q", via.Body, direct.Body)
		}
		sse := httpt.Get(t, raw.URL+"/api/_demo/events", nil)
		if !strings.HasPrefix(sse.Header.Get("Content-Type"), "text/event-stream") || !bytes.Contains(sse.Body, []byte("data:")) {
			t.Fatalf("SSE changed: %s %q", sse.Header.Get("Content-Type"), sse.Body)
		}
	})

	t.Run("websocket upgrade untouched", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(raw.URL, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /api/_demo/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		head := string(buf[:n])
		if !strings.HasPrefix(head, "HTTP/1.1 101") || !strings.Contains(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") {
			t.Fatalf("handshake: %q", head)
		}
		_, _ = conn.Write([]byte("ping-frame"))
		var got []byte
		for !bytes.Contains(got, []byte("ping-frame")) {
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("echo: %v (got %q)", err, got)
			}
			got = append(got, buf[:n]...)
		}
	})
}

func TestUpstreamDownAndSlow(t *testing.T) {
	t.Parallel()
	closed := stacktest.FreePort(t)
	cfg := fmt.Sprintf(`{
	admin {$ERP_ADMIN}
}
http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /down/* {
			reverse_proxy 127.0.0.1:%d
		}
		handle /slow/* {
			rewrite * /_demo/slow?ms=3000
			reverse_proxy {$ERP_DEMO_LISTEN} {
				transport http {
					response_header_timeout 300ms
				}
			}
		}
	}
	handle_errors {
		erp_envelope
	}
}
http://{$ERP_DEMO_LISTEN} {
	erp_demo
}
`, closed)
	in := stacktest.Start(t, stacktest.Options{Config: cfg})
	resp := httpt.Get(t, in.URL+"/down/x", nil)
	if env := resp.Envelope(t); resp.StatusCode != 502 || env.Code() != "UPSTREAM_UNAVAILABLE" {
		t.Fatalf("down: %d %s", resp.StatusCode, resp.Body)
	}
	if bytes.Contains(resp.Body, []byte("127.0.0.1")) || bytes.Contains(resp.Body, []byte("dial")) {
		t.Fatalf("internal detail leaked: %s", resp.Body)
	}
	start := time.Now()
	resp = httpt.Get(t, in.URL+"/slow/x", nil)
	if env := resp.Envelope(t); resp.StatusCode != 504 || env.Code() != "UPSTREAM_TIMEOUT" {
		t.Fatalf("slow: %d %s", resp.StatusCode, resp.Body)
	}
	if time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("timeout not applied: took %s", time.Since(start))
	}
}

// TestAdaptedJSONAnswersIdentically runs Caddyfile.example and its
// `gateway adapt` output side by side and compares their answers.
func TestAdaptedJSONAnswersIdentically(t *testing.T) {
	t.Parallel()
	fromCaddyfile := stacktest.Start(t, stacktest.Options{})

	env := map[string]string{
		"ERP_LISTEN":      fmt.Sprintf(":%d", stacktest.FreePort(t)),
		"ERP_ADMIN":       fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t)),
		"ERP_DEMO_LISTEN": fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort(t)),
	}
	cmd := exec.Command(stacktest.Binary(t), "adapt", "--config", stacktest.RepoRoot()+"/Caddyfile.example", "--adapter", "caddyfile")
	cmd.Env = append(cmd.Environ(), "ERP_LISTEN="+env["ERP_LISTEN"], "ERP_ADMIN="+env["ERP_ADMIN"], "ERP_DEMO_LISTEN="+env["ERP_DEMO_LISTEN"])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	adapted, err := cmd.Output()
	if err != nil {
		t.Fatalf("adapt: %v: %s", err, stderr.String())
	}
	if !json.Valid(adapted) {
		t.Fatalf("adapt output is not JSON: %s", adapted)
	}
	fromJSON := stacktest.Start(t, stacktest.Options{Config: string(adapted), Adapter: "json", Env: env})

	paths := []struct{ method, path, body string }{
		{"GET", "/no/such/route", ""},
		{"GET", "/api/v1/invoices?page=2&limit=5", ""},
		{"GET", "/api/v2/invoices/inv_acme_0001", ""},
		{"GET", "/api/v1/customers?limit=3", ""},
		{"POST", "/api/v1/customers", `{"name":""}`},
		{"GET", "/api/v1/invoices?company_id=globex", ""},
		{"GET", "/api/_demo/text", ""},
		{"GET", "/health/ready", ""},
	}
	tokA := demoauth.Login(t, fromCaddyfile.URL, "alice@acme.test", "acme").Access
	tokB := demoauth.Login(t, fromJSON.URL, "alice@acme.test", "acme").Access
	for _, p := range paths {
		var body []byte
		if p.body != "" {
			body = []byte(p.body)
		}
		for _, auth := range []bool{false, true} {
			var ha, hb map[string]string
			if auth {
				ha, hb = demoauth.Bearer(tokA), demoauth.Bearer(tokB)
			}
			a := httpt.Do(t, p.method, fromCaddyfile.URL+p.path, body, ha)
			b := httpt.Do(t, p.method, fromJSON.URL+p.path, body, hb)
			if a.StatusCode != b.StatusCode || normalize(a.Body) != normalize(b.Body) || a.Header.Get("Content-Type") != b.Header.Get("Content-Type") {
				t.Fatalf("%s %s (auth %v) differs:\ncaddyfile: %d %s\njson:      %d %s", p.method, p.path, auth, a.StatusCode, a.Body, b.StatusCode, b.Body)
			}
		}
	}
}

// normalize drops the parts of an envelope that differ per request.
func normalize(body []byte) string {
	var v map[string]any
	if json.Unmarshal(body, &v) != nil {
		return string(body)
	}
	if m, ok := v["meta"].(map[string]any); ok {
		delete(m, "timestamp")
		delete(m, "request_id")
		delete(m, "user_id") // each instance seeds its own demo users
	}
	// a cursor's position is the same; its signature is under each
	// instance's own (ephemeral) key
	if p, ok := v["pagination"].(map[string]any); ok {
		if c, ok := p["next_cursor"].(string); ok {
			p["next_cursor"], _, _ = strings.Cut(c, ".")
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLargeAnswerStreamsWithBoundedMemory sends a 200 MB JSON answer through
// the edge and checks it arrives as a valid envelope while the gateway's peak
// RSS grows by less than 64 MB.
func TestLargeAnswerStreamsWithBoundedMemory(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{Config: envelopeOnly})
	// warm up: the first requests allocate pools
	httpt.Get(t, in.URL+"/api/_demo/big?mb=8", nil)
	before := peakRSS(t, in.Pid())

	resp, err := httpt.Client.Get(in.URL + "/api/_demo/big?mb=200")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(body) < 200<<20 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	if !json.Valid(body) {
		t.Fatalf("200 MB answer is not valid JSON (tail %q)", body[len(body)-200:])
	}
	var env struct {
		Success bool `json:"success"`
		Meta    struct {
			RequestID string `json:"request_id"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &env); err != nil || !env.Success || env.Meta.RequestID == "" {
		t.Fatalf("not a success envelope: %v", err)
	}
	after := peakRSS(t, in.Pid())
	if grew := after - before; grew > 64<<20 {
		t.Fatalf("peak RSS grew by %d MB (from %d MB to %d MB)", grew>>20, before>>20, after>>20)
	}
	t.Logf("peak RSS %d MB -> %d MB for a 200 MB answer", before>>20, after>>20)
}

func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := exec.Command("cat", fmt.Sprintf("/proc/%d/status", pid)).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

var _ = http.MethodGet
