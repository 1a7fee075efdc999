package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/testenv"
)

func TestParseTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"erp.invoices.*", []string{"erp.invoices.*"}, false},
		{"erp.invoices.*, erp.customers.*,erp.invoices.*", []string{"erp.invoices.*", "erp.customers.*"}, false},
		{"*", nil, false},
		{"erp.invoices.*,*", nil, false},
		{"erp..x", nil, true},
		{"erp.invoices.*,", nil, true},
		{"erp.in voices", nil, true},
		{"erp.>", nil, true},
		{strings.Repeat("a,", 40) + "a", nil, true},
	} {
		got, err := ParseTypes(tc.raw)
		if (err != nil) != tc.err || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseTypes(%q) = %v, %v; want %v, err %v", tc.raw, got, err, tc.want, tc.err)
		}
	}
}

func TestParseLastEventID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw    string
		after  uint64
		resume bool
		err    bool
	}{
		{"", 0, false, false},
		{"0", 0, true, false},
		{" 42 ", 42, true, false},
		{"-1", 0, false, true},
		{"1e3", 0, false, true},
		{"99999999999999999999999", 0, false, true},
	} {
		after, resume, err := ParseLastEventID(tc.raw)
		if after != tc.after || resume != tc.resume || (err != nil) != tc.err {
			t.Errorf("ParseLastEventID(%q) = %d %v %v", tc.raw, after, resume, err)
		}
	}
}

func TestUnreadable(t *testing.T) {
	t.Parallel()
	viewer := []string{"invoices:read", "customers:read"}
	admin := []string{"invoices:read", "webhooks:read"}
	for _, tc := range []struct {
		patterns []string
		scopes   []string
		want     string
	}{
		{nil, viewer, ""},
		{[]string{"erp.invoices.*"}, viewer, ""},
		{[]string{"erp.invoices.created"}, viewer, ""},
		{[]string{"erp.*"}, viewer, ""},
		{[]string{"erp.*.created"}, viewer, ""},
		{[]string{"*"}, viewer, ""},
		{[]string{"erp.invoices.*", "erp.auth.*"}, viewer, "erp.auth.*"},
		{[]string{"erp.ledger.*"}, viewer, "erp.ledger.*"},
		{[]string{"erp.security.*"}, admin, ""},
		{[]string{"erp"}, viewer, "erp"},
		{[]string{"other.thing"}, viewer, "other.thing"},
	} {
		if got := Unreadable(tc.patterns, tc.scopes); got != tc.want {
			t.Errorf("Unreadable(%v, %v) = %q, want %q", tc.patterns, tc.scopes, got, tc.want)
		}
	}
}

func TestSSEFrame(t *testing.T) {
	t.Parallel()
	it := NewItem(7, "erp.invoices.created", []byte(`{"id":"x"}`))
	if got, want := string(it.SSE()), "id: 7\nevent: erp.invoices.created\ndata: {\"id\":\"x\"}\n\n"; got != want {
		t.Fatalf("SSE frame %q, want %q", got, want)
	}
	multi := appendSSE(nil, 1, "t", []byte("a\r\nb"))
	if got, want := string(multi), "id: 1\nevent: t\ndata: a\ndata: b\n\n"; got != want {
		t.Fatalf("multi-line frame %q, want %q", got, want)
	}
	var m struct {
		ID    uint64          `json:"id"`
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(it.WS(), &m); err != nil || m.ID != 7 || string(m.Event) != `{"id":"x"}` {
		t.Fatalf("WS message %s: %v", it.WS(), err)
	}
	if got := string(SSEError(ReasonRevoked)); !strings.HasPrefix(got, "event: error\ndata: {\"code\":\"TOKEN_REVOKED\"") {
		t.Fatalf("error frame %q", got)
	}
}

// TestDispatch: an event reaches the connections of its company whose
// scope and patterns admit it, and no other.
func TestDispatch(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{Buffer: 4})
	all := []string{"invoices:read", "customers:read", "webhooks:read"}
	acmeAll, _ := h.Subscribe("acme", nil, all, "s1")
	acmeInv, _ := h.Subscribe("acme", []string{"erp.invoices.*"}, all, "s2")
	acmeViewer, _ := h.Subscribe("acme", nil, []string{"invoices:read"}, "s3")
	globex, _ := h.Subscribe("globex", nil, all, "s4")
	h.Dispatch(events.CompanyToken("acme"), NewItem(1, "erp.invoices.created", []byte(`{}`)))
	h.Dispatch(events.CompanyToken("acme"), NewItem(2, "erp.customers.updated", []byte(`{}`)))
	h.Dispatch(events.CompanyToken("acme"), NewItem(3, "erp.auth.login.failed", []byte(`{}`)))
	for _, tc := range []struct {
		name string
		s    *Sub
		want []uint64
	}{
		{"every type", acmeAll, []uint64{1, 2, 3}},
		{"invoices only", acmeInv, []uint64{1}},
		{"viewer of invoices", acmeViewer, []uint64{1}},
		{"other company", globex, nil},
	} {
		var got []uint64
		for len(tc.s.ch) > 0 {
			got = append(got, (<-tc.s.ch).Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	h.Revoke("s2")
	if acmeInv.Reason() != ReasonRevoked || acmeAll.Reason() != ReasonNone {
		t.Fatalf("revoke: reasons %v %v", acmeInv.Reason(), acmeAll.Reason())
	}
	for i := uint64(10); i < 20; i++ {
		h.Dispatch(events.CompanyToken("globex"), NewItem(i, "erp.invoices.created", nil))
	}
	if globex.Reason() != ReasonSlow {
		t.Fatalf("a full buffer did not end the connection: %v", globex.Reason())
	}
	h.Unsubscribe(acmeAll)
	if n := h.Stats().Connections; n != 3 {
		t.Fatalf("connections %d, want 3", n)
	}
	h.Close()
	if acmeViewer.Reason() != ReasonShutdown {
		t.Fatalf("close: %v", acmeViewer.Reason())
	}
	if _, err := h.Subscribe("acme", nil, all, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

// TestRevokedBeforeSubscribe: a revocation the set already holds ends the
// connection as it registers.
func TestRevokedBeforeSubscribe(t *testing.T) {
	t.Parallel()
	h := NewHub(Config{Revoked: func(id string) bool { return id == "gone" }})
	s, _ := h.Subscribe("acme", nil, nil, "gone")
	if s.Reason() != ReasonRevoked {
		t.Fatalf("reason %v", s.Reason())
	}
}

// sink records what Serve writes.
type sink struct {
	mu    sync.Mutex
	seqs  []uint64
	types []string
	ended Reason
	got   chan struct{}
	// hold, when set, makes the first Send wait until it is closed (a
	// client that stalls while its replay is under way)
	hold    chan struct{}
	holding chan struct{} // closed when the first Send waits
}

func newSink() *sink { return &sink{got: make(chan struct{}, 1024)} }

func (s *sink) Send(_ context.Context, it *Item) error {
	if s.hold != nil {
		s.mu.Lock()
		first := len(s.seqs) == 0
		s.mu.Unlock()
		if first {
			close(s.holding)
			<-s.hold
		}
	}
	s.mu.Lock()
	s.seqs = append(s.seqs, it.Seq)
	s.types = append(s.types, it.Type)
	s.mu.Unlock()
	s.got <- struct{}{}
	return nil
}
func (s *sink) Heartbeat(context.Context) error { return nil }
func (s *sink) End(_ context.Context, r Reason) error {
	s.mu.Lock()
	s.ended = r
	s.mu.Unlock()
	return nil
}
func (s *sink) snapshot() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.seqs...)
}

func (s *sink) waitN(t *testing.T, n int) []uint64 {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(s.snapshot()) < n {
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("got %d events, want %d: %v", len(s.snapshot()), n, s.snapshot())
		}
	}
	return s.snapshot()
}

// natsHub is a hub reading a fresh stream on the test NATS.
func natsHub(t *testing.T, cfg Config) (*Hub, *events.Engine) {
	t.Helper()
	names := events.NamesFor(testenv.Name() + ":")
	eng, err := events.Open(context.Background(), events.Config{URL: testenv.NATSURL(t), Names: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = eng.JetStream().DeleteStream(context.Background(), names.Stream)
		eng.Close()
	})
	h := NewHub(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go h.Run(ctx, func(context.Context) (*events.Engine, error) { return eng, nil })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if !h.WaitReady(wctx) {
		t.Fatal("hub not ready")
	}
	return h, eng
}

func publish(t *testing.T, eng *events.Engine, company, typ string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ev, err := events.New(events.EdgeSource("test"), typ, company, fmt.Sprint(i), map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.PublishSync(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

var scopes = []string{"invoices:read", "customers:read"}

// TestServeResume: a resume replays what came after the id (only the
// company's events its patterns admit), then the live ones, each once and
// in order.
func TestServeResume(t *testing.T) {
	t.Parallel()
	h, eng := natsHub(t, Config{Buffer: 4})
	publish(t, eng, "acme", "erp.invoices.created", 5)   // seq 1-5
	publish(t, eng, "globex", "erp.invoices.created", 3) // 6-8
	publish(t, eng, "acme", "erp.customers.created", 2)  // 9-10
	publish(t, eng, "acme", "erp.ledger.created", 1)     // 11: no scope
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSink()
	done := make(chan Reason, 1)
	go func() {
		r, _ := h.Serve(ctx, Request{Company: "acme", Scopes: scopes, Resume: true, After: 2}, s)
		done <- r
	}()
	got := s.waitN(t, 5)
	if want := "[3 4 5 9 10]"; fmt.Sprint(got) != want {
		t.Fatalf("replayed %v, want %s", got, want)
	}
	// 12-31: five times the buffer through the live path, a buffer's worth
	// at a time (a burst larger than the buffer, before the connection's
	// goroutine runs, is a slow client, ended by design: a loaded host may
	// schedule it late)
	for g := range 5 {
		publish(t, eng, "acme", "erp.invoices.updated", 4)
		got = s.waitN(t, 5+4*(g+1))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order or duplicate: %v", got)
		}
	}
	if got[len(got)-1] != 31 || len(got) != 25 {
		t.Fatalf("got %v", got)
	}
	cancel()
	<-done
}

// TestServeResumeOverflowDuringReplay: live events that overflow the
// buffer while the replay is under way (the client stalled on the first
// replayed event) are not lost and do not end the connection: the replay
// goes on from the stream, and each event arrives once, in order.
func TestServeResumeOverflowDuringReplay(t *testing.T) {
	t.Parallel()
	h, eng := natsHub(t, Config{Buffer: 4})
	publish(t, eng, "acme", "erp.invoices.created", 3) // 1-3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSink()
	s.hold, s.holding = make(chan struct{}), make(chan struct{})
	done := make(chan Reason, 1)
	go func() {
		r, _ := h.Serve(ctx, Request{Company: "acme", Scopes: scopes, Resume: true, After: 1}, s)
		done <- r
	}()
	<-s.holding                                         // the replay is sending 2
	publish(t, eng, "acme", "erp.invoices.updated", 12) // 4-15: three buffers' worth, dispatched live meanwhile
	close(s.hold)
	got := s.waitN(t, 14)
	want := make([]uint64, 0, 14)
	for seq := uint64(2); seq <= 15; seq++ {
		want = append(want, seq)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	publish(t, eng, "acme", "erp.invoices.updated", 1) // 16: live again
	if got = s.waitN(t, 15); got[14] != 16 {
		t.Fatalf("after the replay: %v", got)
	}
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended != ReasonNone {
		t.Fatalf("the connection was ended: %v", ended)
	}
	cancel()
	<-done
}

// TestServeResumeFromFuture: an id past the stream's end is the end: the
// next live event is delivered.
func TestServeResumeFromFuture(t *testing.T) {
	t.Parallel()
	h, eng := natsHub(t, Config{})
	publish(t, eng, "acme", "erp.invoices.created", 2)
	// The hub dispatched both before the connection registers: else they
	// come after it, and are delivered to it as live events.
	for deadline := time.Now().Add(10 * time.Second); h.last.Load() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hub dispatched up to %d, want 2", h.last.Load())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSink()
	go func() { _, _ = h.Serve(ctx, Request{Company: "acme", Scopes: scopes, Resume: true, After: 1000}, s) }()
	waitConns(t, h, 1)
	publish(t, eng, "acme", "erp.invoices.created", 1)
	if got := s.waitN(t, 1); got[0] != 3 {
		t.Fatalf("got %v", got)
	}
}

// TestServeEnds: revocation and expiry end a stream with their reason.
func TestServeEnds(t *testing.T) {
	t.Parallel()
	h, _ := natsHub(t, Config{})
	s := newSink()
	done := make(chan Reason, 1)
	go func() {
		r, _ := h.Serve(context.Background(), Request{Company: "acme", Scopes: scopes, Revocable: "sid-1"}, s)
		done <- r
	}()
	waitConns(t, h, 1)
	h.Revoke("sid-1")
	if r := <-done; r != ReasonRevoked || s.ended != ReasonRevoked {
		t.Fatalf("revoked: %v %v", r, s.ended)
	}
	s = newSink()
	go func() {
		r, _ := h.Serve(context.Background(), Request{Company: "acme", Scopes: scopes, Expiry: time.Now().Add(300 * time.Millisecond)}, s)
		done <- r
	}()
	select {
	case r := <-done:
		if r != ReasonExpired {
			t.Fatalf("expired: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an expired credential's stream did not end")
	}
}

func waitConns(t *testing.T, h *Hub, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); h.Stats().Connections != n; {
		if time.Now().After(deadline) {
			t.Fatalf("connections %d, want %d", h.Stats().Connections, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkDispatch: one event fanned out to 1,000 connections of its
// company (half of them with a pattern), plus 9,000 of other companies the
// index skips: match and enqueue per connection.
func BenchmarkDispatch(b *testing.B) {
	h := NewHub(Config{Buffer: 1024})
	all := []string{"customers:read", "invoices:read", "ledger:read", "products:read", "webhooks:read"}
	var subs []*Sub
	for i := 0; i < 1000; i++ {
		var p []string
		if i%2 == 0 {
			p = []string{"erp.customers.*", "erp.invoices.*"}
		}
		s, _ := h.Subscribe("acme", p, all, fmt.Sprint("s", i))
		subs = append(subs, s)
	}
	for i := 0; i < 9000; i++ {
		_, _ = h.Subscribe(fmt.Sprint("c", i%900), nil, all, "")
	}
	tok := events.CompanyToken("acme")
	it := NewItem(1, "erp.invoices.created", []byte(`{"specversion":"1.0"}`))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Dispatch(tok, it)
		if i%512 == 511 { // keep the buffers from filling
			for _, s := range subs {
				for len(s.ch) > 0 {
					<-s.ch
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/conn")
}

// BenchmarkMatch: one connection's decision for one event.
func BenchmarkMatch(b *testing.B) {
	s := &Sub{patterns: []string{"erp.customers.*", "erp.invoices.*"}, scopes: []string{"customers:read", "invoices:read", "webhooks:read"}}
	it := NewItem(1, "erp.invoices.created", nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !s.wants(it) {
			b.Fatal("no")
		}
	}
}

// BenchmarkSSEFrame: the frame is made once per event, whatever the
// number of connections.
func BenchmarkSSEFrame(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 400)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = NewItem(uint64(i), "erp.invoices.created", data).SSE()
	}
}

// TestOpenThenServe: an event published after Open (when the client is
// told the stream is open) and before Serve runs is not missed.
func TestOpenThenServe(t *testing.T) {
	t.Parallel()
	h, eng := natsHub(t, Config{})
	st, err := h.Open(Request{Company: "acme", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, eng, "acme", "erp.invoices.created", 1)
	time.Sleep(200 * time.Millisecond) // the hub dispatched it before Serve started
	s := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = st.Serve(ctx, s) }()
	if got := s.waitN(t, 1); got[0] != 1 {
		t.Fatalf("got %v", got)
	}
}
