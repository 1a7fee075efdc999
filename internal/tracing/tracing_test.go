package tracing

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recording is a context holding a recording root span of a provider whose
// ended spans rec collects.
func recording(t testing.TB) (context.Context, *tracetest.SpanRecorder, trace.Span) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, root := tp.Tracer("test").Start(context.Background(), "server")
	return ctx, rec, root
}

func TestStartJoinsTheContextsTrace(t *testing.T) {
	t.Parallel()
	ctx, rec, root := recording(t)
	cctx, span := Start(ctx, "erp.quota")
	if !span.IsRecording() {
		t.Fatal("a child of a recording span does not record")
	}
	Outcome(span, "allowed")
	Fail(span, errors.New("store down"))
	_, grand := StartClient(cctx, "redis.evalsha")
	grand.End()
	span.End()
	root.End()
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans ended, want 3", len(spans))
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	q, r := byName["erp.quota"], byName["redis.evalsha"]
	if q == nil || r == nil {
		t.Fatalf("spans %v", byName)
	}
	if q.Parent().SpanID() != root.SpanContext().SpanID() || r.Parent().SpanID() != q.SpanContext().SpanID() {
		t.Fatal("the spans do not form server → erp.quota → redis.evalsha")
	}
	if q.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatal("another trace")
	}
	if r.SpanKind() != trace.SpanKindClient {
		t.Fatalf("kind %v", r.SpanKind())
	}
	if q.Status().Description != "store down" {
		t.Fatalf("status %+v", q.Status())
	}
	var outcome string
	for _, a := range q.Attributes() {
		if a.Key == KeyOutcome {
			outcome = a.Value.AsString()
		}
	}
	if outcome != "allowed" {
		t.Fatalf("outcome %q", outcome)
	}
}

func TestNotRecordingAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, "erp.auth")
		if c != ctx || span.IsRecording() {
			t.Fatal("a span started without a recording parent")
		}
		if span.IsRecording() {
			span.SetAttributes(KeyCompany.String("acme"))
		}
		Outcome(span, "ok")
		Fail(span, nil)
		span.End()
		var tr PGX
		qc := tr.TraceQueryStart(ctx, nil, pgx.TraceQueryStartData{SQL: "SELECT 1"})
		tr.TraceQueryEnd(qc, nil, pgx.TraceQueryEndData{})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per untraced span, want 0", allocs)
	}
}

func TestPGXSpans(t *testing.T) {
	t.Parallel()
	ctx, rec, root := recording(t)
	var tr PGX
	qc := tr.TraceQueryStart(ctx, nil, pgx.TraceQueryStartData{SQL: "\n  select id from users where email = $1"})
	tr.TraceQueryEnd(qc, nil, pgx.TraceQueryEndData{CommandTag: pgconn.NewCommandTag("SELECT 1")})
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	bc := tr.TraceBatchStart(ctx, nil, pgx.TraceBatchStartData{Batch: b})
	tr.TraceBatchQuery(bc, nil, pgx.TraceBatchQueryData{SQL: "SELECT 1", Err: errors.New("boom")})
	tr.TraceBatchEnd(bc, nil, pgx.TraceBatchEndData{Err: errors.New("boom")})
	root.End()
	got := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		got[s.Name()] = s
	}
	q := got["postgres.query"]
	if q == nil || got["postgres.batch"] == nil {
		t.Fatalf("spans %v", got)
	}
	attrs := map[string]string{}
	for _, a := range q.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["db.operation.name"] != "SELECT" || attrs["db.system.name"] != "postgresql" || attrs["db.response.rows_affected"] != "1" {
		t.Fatalf("attributes %v", attrs)
	}
	if got["postgres.batch"].Status().Description != "boom" || len(got["postgres.batch"].Events()) == 0 {
		t.Fatal("the batch's failure is not on its span")
	}
}

func TestOperation(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"SELECT 1": "SELECT", " (select 1)": "SELECT", "with x as (select 1) select * from x": "WITH",
		"": "OTHER", "-- comment": "OTHER", "insert into t values ($1)": "INSERT",
	} {
		if got := operation(in); got != want {
			t.Errorf("operation(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkStartNotRecording(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := Start(ctx, "erp.quota")
		if span.IsRecording() {
			span.SetAttributes(KeyCompany.String("acme"))
		}
		span.End()
	}
}

func BenchmarkStartRecording(b *testing.B) {
	ctx, _, _ := recording(b)
	b.ReportAllocs()
	for b.Loop() {
		_, span := Start(ctx, "erp.quota")
		if span.IsRecording() {
			span.SetAttributes(KeyCompany.String("acme"))
		}
		span.End()
	}
}
