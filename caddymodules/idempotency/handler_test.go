package idempotency

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/idempotency"
)

func newHandler() *Handler {
	h := &Handler{MaxEntry: 64}
	h.setDefaults()
	h.logger = zap.NewNop()
	h.store = idempotency.NewMemory(time.Hour, time.Minute, 1<<20, nil)
	return h
}

// request builds a request as it reaches the handler: the company known,
// the client's original method and URL recorded by Caddy.
func request(method, path, company, key, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		r.Header.Set(HeaderKey, key)
	}
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.company_id", company)
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, http.Request{Method: method, URL: r.URL})
	return r.WithContext(ctx)
}

// backend counts calls and answers 201 with the body it got.
type backend struct {
	calls  atomic.Int32
	status int
	gate   chan struct{} // when set, each call waits on it
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	b.calls.Add(1)
	if b.gate != nil {
		<-b.gate
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/v1/invoices/7")
	w.Header().Set("Set-Cookie", "no=1")
	st := b.status
	if st == 0 {
		st = http.StatusCreated
	}
	w.WriteHeader(st)
	_, _ = w.Write(body)
	return nil
}

func serve(t *testing.T, h *Handler, r *http.Request, next caddyhttp.Handler) (*httptest.ResponseRecorder, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, next)
	return w, err
}

func status(err error) int {
	if ce, ok := contract.AsError(err); ok {
		return ce.Status
	}
	return 0
}

func TestReplay(t *testing.T) {
	h, b := newHandler(), &backend{}
	w, err := serve(t, h, request("POST", "/api/v1/invoices", "acme", "k1", `{"a":1}`), b)
	if err != nil || w.Code != 201 || w.Header().Get(HeaderReplayed) != "" {
		t.Fatalf("first: %d %v %v", w.Code, w.Header(), err)
	}
	w, err = serve(t, h, request("POST", "/api/v1/invoices", "acme", "k1", `{"a":1}`), b)
	if err != nil || w.Code != 201 || w.Header().Get(HeaderReplayed) != "true" || w.Body.String() != `{"a":1}` {
		t.Fatalf("retry: %d %v %q %v", w.Code, w.Header(), w.Body, err)
	}
	if w.Header().Get("Location") != "/api/v1/invoices/7" || w.Header().Get("Set-Cookie") != "" {
		t.Fatalf("replayed headers %v", w.Header())
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("backend called %d times", n)
	}
	// another company, same key: its own request
	if w, _ := serve(t, h, request("POST", "/api/v1/invoices", "globex", "k1", `{"a":1}`), b); w.Header().Get(HeaderReplayed) != "" || b.calls.Load() != 2 {
		t.Fatalf("globex got acme's answer: %v", w.Header())
	}
	// same key, another body
	if _, err := serve(t, h, request("POST", "/api/v1/invoices", "acme", "k1", `{"a":2}`), b); status(err) != 422 {
		t.Fatalf("other body: %v", err)
	}
	if ce, _ := contract.AsError(err); ce != nil && ce.Code != contract.CodeValidationFailed {
		t.Fatal(ce.Code)
	}
}

func TestReplayDisarmsEventSink(t *testing.T) {
	h, b := newHandler(), &backend{}
	_, _ = serve(t, h, request("POST", "/api/v1/invoices", "acme", "k", `{}`), b)
	r := request("POST", "/api/v1/invoices", "acme", "k", `{}`)
	caddyhttp.SetVar(r.Context(), contract.VarEventSink, "armed")
	_, _ = serve(t, h, r, b)
	if caddyhttp.GetVar(r.Context(), contract.VarEventSink) != nil {
		t.Fatal("a replay would emit the write's event again")
	}
}

func TestNotKeyed(t *testing.T) {
	h, b := newHandler(), &backend{}
	for range 2 {
		_, _ = serve(t, h, request("POST", "/api/v1/invoices", "acme", "", `{}`), b)
	}
	// the JSON-RPC dialect's marker on a client GET rewritten to POST
	for range 2 {
		r := request("GET", "/api/v1/catalogue", "acme", "", "")
		r.Method = "POST"
		r.Header.Set(HeaderKey, `"search_read"`)
		_, _ = serve(t, h, r, b)
	}
	if n := b.calls.Load(); n != 4 {
		t.Fatalf("backend called %d times, want 4", n)
	}
}

func TestBadKey(t *testing.T) {
	h, b := newHandler(), &backend{}
	for _, k := range []string{strings.Repeat("x", 256), "a\x01b"} {
		if _, err := serve(t, h, request("POST", "/p", "acme", k, ""), b); status(err) != 400 {
			t.Fatalf("%q: %v", k, err)
		}
	}
	r := request("POST", "/p", "acme", "a", "")
	r.Header.Add(HeaderKey, "b")
	if _, err := serve(t, h, r, b); status(err) != 400 {
		t.Fatalf("two keys: %v", err)
	}
	if b.calls.Load() != 0 {
		t.Fatal("refused requests reached the backend")
	}
}

func TestFailureReleases(t *testing.T) {
	h := newHandler()
	b := &backend{status: 503}
	_, _ = serve(t, h, request("POST", "/p", "acme", "k", "x"), b)
	b.status = 0
	w, _ := serve(t, h, request("POST", "/p", "acme", "k", "x"), b)
	if w.Code != 201 || w.Header().Get(HeaderReplayed) != "" || b.calls.Load() != 2 {
		t.Fatalf("a 5xx was stored: %d %v", w.Code, w.Header())
	}
	// a transport failure (the proxy's error) releases too
	failing := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return caddyhttp.Error(http.StatusBadGateway, io.ErrUnexpectedEOF)
	})
	_, _ = serve(t, h, request("POST", "/p", "acme", "k2", "x"), failing)
	if w, _ := serve(t, h, request("POST", "/p", "acme", "k2", "x"), b); w.Code != 201 || w.Header().Get(HeaderReplayed) != "" {
		t.Fatal("transport failure kept the key")
	}
	// a 4xx is stored
	b.status = 404
	_, _ = serve(t, h, request("POST", "/p", "acme", "k3", "x"), b)
	b.status = 0
	if w, _ := serve(t, h, request("POST", "/p", "acme", "k3", "x"), b); w.Code != 404 || w.Header().Get(HeaderReplayed) != "true" {
		t.Fatalf("4xx not replayed: %d", w.Code)
	}
}

func TestTooLargeNotStored(t *testing.T) {
	h, b := newHandler(), &backend{}
	big := strings.Repeat("z", 65)
	_, _ = serve(t, h, request("POST", "/p", "acme", "k", big), b)
	w, _ := serve(t, h, request("POST", "/p", "acme", "k", big), b)
	if w.Header().Get(HeaderReplayed) != "" || b.calls.Load() != 2 || w.Body.String() != big {
		t.Fatal("an answer over max_entry was replayed")
	}
}

func TestInFlight(t *testing.T) {
	h := newHandler()
	b := &backend{gate: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = serve(t, h, request("POST", "/p", "acme", "k", "x"), b)
	}()
	for b.calls.Load() == 0 {
		time.Sleep(time.Millisecond) // wait for the first to reach the backend (not a timed assertion)
	}
	_, err := serve(t, h, request("POST", "/p", "acme", "k", "x"), b)
	ce, ok := contract.AsError(err)
	if !ok || ce.Status != 409 || ce.Code != contract.CodeConflict || ce.Header.Get("Retry-After") == "" {
		t.Fatalf("while in flight: %v", err)
	}
	close(b.gate)
	wg.Wait()
	if w, _ := serve(t, h, request("POST", "/p", "acme", "k", "x"), b); w.Header().Get(HeaderReplayed) != "true" {
		t.Fatal("not replayed after the first ended")
	}
}

func BenchmarkNoKey(b *testing.B) {
	h := newHandler()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	r := request("POST", "/api/v1/invoices", "acme", "", `{"a":1}`)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, next)
	}
}

func BenchmarkKeyReplay(b *testing.B) {
	h := newHandler()
	body := `{"customer_id":"c1","amount":"10.00"}`
	_ = h.ServeHTTP(httptest.NewRecorder(), request("POST", "/api/v1/invoices", "acme", "k", body), &backend{})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := request("POST", "/api/v1/invoices", "acme", "k", body)
		w := httptest.NewRecorder()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, &backend{})
	}
}

func BenchmarkKeyFirst(b *testing.B) {
	h := newHandler()
	h.store = idempotency.NewMemory(time.Hour, time.Minute, 1<<30, nil)
	body := `{"customer_id":"c1","amount":"10.00"}`
	next := &backend{}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		i++
		r := request("POST", "/api/v1/invoices", "acme", "k"+string(rune(i)), body)
		w := httptest.NewRecorder()
		b.StartTimer()
		_ = h.ServeHTTP(w, r, next)
	}
}
