package tracing

import (
	"context"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Redis is a go-redis hook (client.AddHook): a client span `redis.<command>`
// per command (`redis.evalsha`, `redis.get`, …) and `redis.pipeline` per
// pipeline or transaction, children of the context's span. Commands'
// arguments (keys name companies and sessions, values may be secrets) are
// never recorded.
type Redis struct{}

var (
	redisSystem = attribute.String("db.system.name", "redis")
	keyCmdCount = attribute.Key("db.operation.batch.size")
)

// DialHook passes dials through: a dial happens inside a command, whose
// span covers it.
func (Redis) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// ProcessHook traces one command.
func (Redis) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmd)
		}
		name := cmd.Name()
		ctx, span := StartClient(ctx, "redis."+name)
		span.SetAttributes(redisSystem, keyDBOp.String(name))
		err := next(ctx, cmd)
		if err != nil && err != redis.Nil {
			Fail(span, err)
		}
		span.End()
		return err
	}
}

// ProcessPipelineHook traces a pipeline (or MULTI/EXEC) as one span.
func (Redis) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return next(ctx, cmds)
		}
		ctx, span := StartClient(ctx, "redis.pipeline")
		span.SetAttributes(redisSystem, keyCmdCount.Int(len(cmds)))
		err := next(ctx, cmds)
		if err != nil && err != redis.Nil {
			Fail(span, err)
		}
		span.End()
		return err
	}
}

// Interface guards
var _ redis.Hook = Redis{}
