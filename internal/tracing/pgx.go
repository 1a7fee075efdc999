package tracing

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// PGX is a pgx tracer (the pool config's ConnConfig.Tracer): a client span
// `postgres.query` per query, `postgres.batch` per batch and
// `postgres.connect` per new connection, children of the context's span.
// A span holds the statement's operation and text (statements are written
// with $n parameters: the text holds no value) and the rows affected, never
// an argument.
type PGX struct{}

var (
	dbSystem    = attribute.String("db.system.name", "postgresql")
	keyDBOp     = attribute.Key("db.operation.name")
	keyDBText   = attribute.Key("db.query.text")
	keyDBRows   = attribute.Key("db.response.rows_affected")
	keyDBBatch  = attribute.Key("db.operation.batch.size")
	maxTextSize = 2048
)

// TraceQueryStart starts a query's span.
func (PGX) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	ctx, span := StartClient(ctx, "postgres.query")
	if span.IsRecording() {
		text := data.SQL
		if len(text) > maxTextSize {
			text = text[:maxTextSize]
		}
		span.SetAttributes(dbSystem, keyDBOp.String(operation(data.SQL)), keyDBText.String(text))
	}
	return ctx
}

// TraceQueryEnd ends the span TraceQueryStart started.
func (PGX) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if data.Err == nil {
		span.SetAttributes(keyDBRows.Int64(data.CommandTag.RowsAffected()))
	}
	Fail(span, data.Err)
	span.End()
}

// TraceBatchStart starts a batch's span.
func (PGX) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	ctx, span := StartClient(ctx, "postgres.batch")
	if span.IsRecording() && data.Batch != nil {
		span.SetAttributes(dbSystem, keyDBBatch.Int(data.Batch.Len()))
	}
	return ctx
}

// TraceBatchQuery notes a failed query of the batch on its span.
func (PGX) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if data.Err != nil {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("query failed", trace.WithAttributes(keyDBOp.String(operation(data.SQL))))
		}
	}
}

// TraceBatchEnd ends the span TraceBatchStart started.
func (PGX) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	Fail(span, data.Err)
	span.End()
}

// TraceConnectStart starts a new connection's span (the pool connects
// lazily, inside a request's query when it has no idle connection).
func (PGX) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	ctx, span := StartClient(ctx, "postgres.connect")
	if span.IsRecording() {
		span.SetAttributes(dbSystem)
	}
	return ctx
}

// TraceConnectEnd ends the span TraceConnectStart started. A connection
// error's text may name the server, never the password: pgconn redacts it.
func (PGX) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	Fail(span, data.Err)
	span.End()
}

// operation is the statement's first keyword in upper case (SELECT,
// INSERT, WITH, …), a short bounded value.
func operation(sql string) string {
	sql = strings.TrimLeft(sql, " \t\r\n(")
	end := 0
	for end < len(sql) && end < 16 {
		c := sql[end]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			break
		}
		end++
	}
	if end == 0 {
		return "OTHER"
	}
	return strings.ToUpper(sql[:end])
}

// Interface guards
var (
	_ pgx.QueryTracer   = PGX{}
	_ pgx.BatchTracer   = PGX{}
	_ pgx.ConnectTracer = PGX{}
)
