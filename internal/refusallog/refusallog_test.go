package refusallog

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

type skipKey struct{}

// skipped records which requests' access log lines were left out.
type skipped struct {
	mu  sync.Mutex
	ids []int
}

func (s *skipped) skip(ctx context.Context) {
	s.mu.Lock()
	s.ids = append(s.ids, ctx.Value(skipKey{}).(int))
	s.mu.Unlock()
}

func request(i int) context.Context { return context.WithValue(context.Background(), skipKey{}, i) }

func TestFirstSampleLoggedThenCounted(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	clk := &clock{now: t0}
	sk := &skipped{}
	l := New(context.Background(), Options{Sample: 3, Interval: time.Minute, Now: clk.Now, Tick: time.Hour, Skip: sk.skip})
	jwt := l.For(zap.New(core).Named("jwt"))
	authz := l.For(zap.New(core).Named("authz"))
	for i := range 10 {
		if ce := jwt.Check(request(i), zapcore.InfoLevel, "access token refused", "malformed"); ce != nil {
			ce.Write(zap.Int("i", i))
		}
	}
	// Another reason, another message, another logger: windows of their own.
	if ce := jwt.Check(request(100), zapcore.InfoLevel, "access token refused", "expired"); ce == nil {
		t.Fatal("the first refusal of another reason is not logged")
	}
	if ce := authz.Check(request(101), zapcore.WarnLevel, "access token refused", "malformed"); ce == nil {
		t.Fatal("the first refusal of another logger is not logged")
	}
	lines := logs.FilterMessage("access token refused").FilterLoggerName("jwt").All()
	if len(lines) != 3 {
		t.Fatalf("%d lines logged one by one, want 3", len(lines))
	}
	for i, e := range lines {
		if e.ContextMap()["i"] != int64(i) {
			t.Fatalf("line %d is %v: not the first ones", i, e.ContextMap())
		}
	}
	if len(sk.ids) != 7 || sk.ids[0] != 3 || sk.ids[6] != 9 {
		t.Fatalf("access log lines skipped for %v, want requests 3..9", sk.ids)
	}

	// Before the window ends: no summary; once it has: one, with the count.
	l.flush(false)
	if n := logs.FilterMessage(SummaryMessage).Len(); n != 0 {
		t.Fatalf("%d summaries before the window ended", n)
	}
	clk.Set(t0.Add(time.Minute))
	l.flush(false)
	sums := logs.FilterMessage(SummaryMessage).All()
	if len(sums) != 1 {
		t.Fatalf("summaries %+v, want 1 (windows that logged everything have none)", sums)
	}
	s := sums[0]
	m := s.ContextMap()
	if s.LoggerName != "jwt" || s.Level != zapcore.InfoLevel || m["message"] != "access token refused" || m["reason"] != "malformed" ||
		m["count"] != int64(7) || m["logged"] != int64(3) || m["total"] != int64(10) ||
		!m["window_start"].(time.Time).Equal(t0) || !m["window_end"].(time.Time).Equal(t0.Add(time.Minute)) {
		t.Fatalf("summary %s %v %v", s.LoggerName, s.Level, m)
	}
	// The next window logs afresh.
	if ce := jwt.Check(request(11), zapcore.InfoLevel, "access token refused", "malformed"); ce == nil {
		t.Fatal("a new window does not log")
	}
}

// Lines below the logger's level still sample the access log; their summary
// is written at info, so the count is never lost.
func TestDebugLinesSummarisedAtInfo(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	sk := &skipped{}
	l := New(context.Background(), Options{Sample: 2, Interval: time.Hour, Now: func() time.Time { return t0 }, Skip: sk.skip})
	shadow := l.For(zap.New(core))
	q := l.For(zap.New(core))
	for i := range 5 {
		if ce := q.Check(request(i), zapcore.DebugLevel, "erp_quota: refused", "rate_limited"); ce != nil {
			t.Fatal("a debug line written at info level")
		}
	}
	if len(sk.ids) != 3 {
		t.Fatalf("access log lines skipped for %v, want the 3 past the sample", sk.ids)
	}
	// A request served all the same (shadow mode) is sampled but keeps its access log line.
	for range 3 {
		if ce := shadow.CheckLine(zapcore.InfoLevel, "erp_quota shadow: would refuse", "rate_limited"); ce != nil {
			ce.Write()
		}
	}
	if len(sk.ids) != 3 {
		t.Fatalf("access log lines skipped for %v: a served request's too", sk.ids)
	}
	if n := logs.FilterMessage("erp_quota shadow: would refuse").Len(); n != 2 {
		t.Fatalf("%d shadow lines, want 2", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, e := range logs.FilterMessage(SummaryMessage).All() {
		m := e.ContextMap()
		counts[m["message"].(string)] = m["count"].(int64)
		// The windows were cut short by Close: they end then.
		if e.Level != zapcore.InfoLevel || !m["window_end"].(time.Time).Equal(t0) {
			t.Fatalf("summary %v %v", e.Level, m)
		}
	}
	if len(counts) != 2 || counts["erp_quota: refused"] != 3 || counts["erp_quota shadow: would refuse"] != 1 {
		t.Fatalf("summary counts %v", counts)
	}
}

// Without Skip (access_log all) nothing else changes; a nil Log samples nothing.
func TestNoSkipAndNilLog(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	l := New(context.Background(), Options{Sample: 1})
	defer l.Close()
	z := l.For(zap.New(core))
	for range 3 {
		if ce := z.Check(context.Background(), zapcore.InfoLevel, "API key refused", "inactive"); ce != nil {
			ce.Write()
		}
	}
	var none *Log
	plain := none.For(zap.New(core))
	for range 3 {
		if ce := plain.Check(context.Background(), zapcore.InfoLevel, "login failed", "bad_password"); ce != nil {
			ce.Write()
		}
	}
	if a, b := logs.FilterMessage("API key refused").Len(), logs.FilterMessage("login failed").Len(); a != 1 || b != 3 {
		t.Fatalf("%d sampled lines (want 1), %d unsampled (want 3)", a, b)
	}
	var zero Logger
	if zero.Check(context.Background(), zapcore.ErrorLevel, "x", "y") != nil {
		t.Fatal("the zero Logger wrote")
	}
}

// The goroutine summarises ended windows on its own and stops with its
// base context, writing what is open.
func TestSummariesWithoutClose(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	clk := &clock{now: t0}
	ctx, cancel := context.WithCancel(context.Background())
	l := New(ctx, Options{Sample: 1, Interval: time.Second, Now: clk.Now, Tick: time.Millisecond})
	z := l.For(zap.New(core))
	for range 4 {
		z.Check(context.Background(), zapcore.InfoLevel, "login throttled", "account_limit")
	}
	clk.Set(t0.Add(time.Second))
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage(SummaryMessage).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no summary 10s after the window ended")
		}
		time.Sleep(time.Millisecond)
	}
	z.Check(context.Background(), zapcore.InfoLevel, "login throttled", "account_limit")
	z.Check(context.Background(), zapcore.InfoLevel, "login throttled", "account_limit")
	cancel()
	if err := l.Close(); err != nil { // waits for the goroutine
		t.Fatal(err)
	}
	var counts []int64
	for _, e := range logs.FilterMessage(SummaryMessage).All() {
		counts = append(counts, e.ContextMap()["count"].(int64))
	}
	if len(counts) != 2 || counts[0] != 3 || counts[1] != 1 {
		t.Fatalf("summary counts %v, want [3 1]", counts)
	}
}

// A refusal past its window's sample: a lock, a map look-up, a count and
// the skip hook; no allocation.
func BenchmarkCheckPastSample(b *testing.B) {
	l := New(context.Background(), Options{Sample: 1, Interval: time.Hour, Skip: func(context.Context) {}})
	defer l.Close()
	z := l.For(zap.NewNop())
	ctx := context.Background()
	z.Check(ctx, zapcore.InfoLevel, "access token refused", "malformed")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if z.Check(ctx, zapcore.InfoLevel, "access token refused", "malformed") != nil {
				b.Fatal("logged past the sample")
			}
		}
	})
}
