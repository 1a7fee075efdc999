package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDiagnosticsSimple(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target, contentType, body string
		status                          int
	}{
		{"ping", "/_demo/ping", "application/json", `{"ok":true}`, 200},
		{"broken", "/_demo/broken", "application/json", `{"a": [1, 2,`, 200},
		{"text", "/_demo/text", "text/plain; charset=utf-8", textBody, 200},
		{"slow", "/_demo/slow?ms=5", "application/json", `{"slept_ms":5}`, 200},
		{"slow capped", "/_demo/slow?ms=0", "application/json", `{"slept_ms":0}`, 200},
		{"big zero", "/_demo/big?mb=0", "application/json", `[]`, 200},
		{"slow bad", "/_demo/slow?ms=soon", "application/problem+json", "", 400},
		{"big bad", "/_demo/big?mb=-1", "application/problem+json", "", 400},
		{"status 503", "/_demo/status?code=503", "application/problem+json", "", 503},
		{"status bad", "/_demo/status?code=200", "application/problem+json", "", 400},
		{"unknown", "/_demo/nope", "application/problem+json", "", 404},
		{"ws without upgrade", "/_demo/ws", "application/problem+json", "", 426},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := call(t, newTestServer(), "GET", tt.target, "", "") // no company header needed
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != tt.contentType {
				t.Fatalf("%d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", rec.Body, tt.body)
			}
		})
	}
}

func TestSlowHonoursCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/_demo/slow?ms=60000", nil)
	rec := httptest.NewRecorder()
	start := time.Now()
	newTestServer().ServeHTTP(rec, req)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow ignored cancellation: %v", d)
	}
	if rec.Body.Len() != 0 {
		t.Fatalf("answered after cancellation: %s", rec.Body)
	}
}

func TestEchoHeaders(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "/_demo/echo-headers?x=1", nil)
	req.Header.Set("X-ERP-Company-ID", "acme")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	rec := httptest.NewRecorder()
	newTestServer().ServeHTTP(rec, req)
	var got struct {
		Method, Host, Path, Query string
		Headers                   map[string][]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "GET" || got.Path != "/_demo/echo-headers" || got.Query != "x=1" || got.Host != "example.com" {
		t.Errorf("request line echoed as %+v", got)
	}
	if v := got.Headers["X-Erp-Company-Id"]; len(v) != 1 || v[0] != "acme" {
		t.Errorf("company header echoed as %v", v)
	}
	if v := got.Headers["X-Multi"]; len(v) != 2 {
		t.Errorf("multi-valued header echoed as %v", v)
	}
	// below echo-headers too, with the path as asked
	rec = httptest.NewRecorder()
	newTestServer().ServeHTTP(rec, httptest.NewRequest("GET", "/_demo/echo-headers/invoices/x", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got.Path != "/_demo/echo-headers/invoices/x" {
		t.Errorf("below echo-headers: %d %s", rec.Code, rec.Body)
	}
}

func TestBigStreams(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newTestServer())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_demo/big?mb=3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Length %d, Content-Type %q", resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	cr := &countingReader{r: resp.Body}
	var items []struct {
		I    int    `json:"i"`
		Kind string `json:"kind"`
	}
	if err := json.NewDecoder(cr).Decode(&items); err != nil {
		t.Fatalf("not a valid JSON array: %v", err)
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		t.Fatal(err)
	}
	if want := int64(3 << 20); cr.n < want || cr.n > want+2048 {
		t.Fatalf("%d bytes, want about %d", cr.n, want)
	}
	if items[len(items)-1].I != len(items)-1 {
		t.Fatalf("items not consecutive")
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestEventsFlushOneByOne(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newTestServer())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/_demo/events?interval_ms=300")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	var arrivals []time.Time
	var events []string
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			arrivals = append(arrivals, time.Now())
			events = append(events, strings.TrimSpace(data))
		}
	}
	if strings.Join(events, " ") != `{"n":1} {"n":2} {"n":3}` {
		t.Fatalf("events %q", events)
	}
	// had the events been buffered, they would arrive together
	if gap := arrivals[2].Sub(arrivals[0]); gap < 400*time.Millisecond {
		t.Fatalf("events arrived within %v: not flushed one by one", gap)
	}
}

func TestWebSocketHandshakeAndEcho(t *testing.T) {
	t.Parallel()
	s := newTestServer()
	srv := httptest.NewServer(s)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The key and accept value are the example of RFC 6455 section 1.3.
	handshake := "GET /_demo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, handshake+"early bytes|"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake answer %d %v", resp.StatusCode, resp.Header)
	}
	if _, err := io.WriteString(conn, "hello"); err != nil {
		t.Fatal(err)
	}
	want := "early bytes|hello"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("echo %q, want %q", got, want)
	}
	// Close ends the echo loop from the server side.
	_ = s.Close()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open after Close")
	}
}

func TestWebSocketRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"wrong version", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 426},
		{"bad key", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", "/_demo/ws", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			newTestServer().ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("%d: %s", rec.Code, rec.Body)
			}
		})
	}
}

func BenchmarkPing(b *testing.B) {
	s := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/_demo/ping", nil)
		for pb.Next() {
			s.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}

func BenchmarkListInvoices(b *testing.B) {
	s := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/v2/invoices?limit=50&sort=-total", nil)
		req.Header.Set(CompanyHeader, "acme")
		for pb.Next() {
			s.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}
