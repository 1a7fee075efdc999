// Package tracing makes erpgate's own OpenTelemetry spans: the edge modules'
// decisions, the auth service's flows, every Postgres query (a pgx tracer)
// and Redis command (a go-redis hook). A span is a child of the span in the
// context, started with the tracer of that span's provider: Caddy's
// `tracing` handler puts the request's server span there, so erpgate's
// spans join its trace and go to its exporter. Without a recording span in
// the context (no `tracing` handler, no exporter, or a trace sampled out)
// nothing is started and nothing is allocated: Start hands back the
// context as it is. No global tracer provider is read or set. It imports
// no Caddy and nothing of ours.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the instrumentation scope of erpgate's spans.
const Instrumentation = "github.com/erpgate/erpgate"

// Attribute keys of erpgate's spans. Values are bounded and never secret:
// a company id, a backend's name, an outcome from a short list; never a
// token, key, password or query argument.
const (
	KeyCompany  = attribute.Key("erp.company_id")
	KeyOutcome  = attribute.Key("erp.outcome")
	KeyProvider = attribute.Key("erp.auth.provider")
	KeyCache    = attribute.Key("erp.auth.cache")
	KeyBackend  = attribute.Key("erp.backend")
	KeyVersion  = attribute.Key("erp.api_version")
	KeyDialect  = attribute.Key("erp.dialect")
	KeyStore    = attribute.Key("erp.quota.store")
	KeyBatch    = attribute.Key("erp.quota.batch_size")
	KeyPlan     = attribute.Key("erp.plan")
	KeyStatus   = attribute.Key("http.response.status_code")
)

// Start starts the span name as a child of ctx's span when that one
// records, and returns the context holding it. Otherwise it returns ctx
// and ctx's own (non-recording) span, so ending or annotating the result
// is always safe and free. Callers build attributes only when
// span.IsRecording().
func Start(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(Instrumentation).Start(ctx, name)
}

// StartClient is Start for a call to another service (a database, a
// backend): its span has kind client.
func StartClient(ctx context.Context, name string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(Instrumentation).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
}

// Fail marks span as failed with err (when it records and err is not nil).
// err's text goes into the span: callers pass errors that hold no secret.
func Fail(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// Outcome sets the span's erp.outcome (one of a short list the caller
// owns) when it records.
func Outcome(span trace.Span, outcome string) {
	if span.IsRecording() {
		span.SetAttributes(KeyOutcome.String(outcome))
	}
}
