package cache

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/internal/respcache"
)

// watchEvents invalidates on the business events of every company until
// ctx (the config's) ends. It waits for the event engine, then holds a
// plain NATS subscription on the events' subjects: every instance hears
// every event (a JetStream consumer would share them out, or cost the
// server a consumer per instance), and an event missed while NATS is
// unreachable costs at most the TTL.
func (h *Handler) watchEvents(ctx context.Context, l *erpapp.Lasting) {
	eng, err := l.EventsWait(ctx)
	if err != nil {
		return // the config unloaded first
	}
	sub, err := eng.Conn().Subscribe(eng.Names().AllFilter("erp.*"), func(m *nats.Msg) {
		h.onEvent(ctx, m.Data)
	})
	if err != nil {
		h.logger.Error("erp_cache: subscribing to business events failed; writes outside this edge show when the TTL ends", zap.Error(err))
		return
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
}

// onEvent invalidates the entries of the cached backends an event's
// resource names, for the event's company.
func (h *Handler) onEvent(ctx context.Context, data []byte) {
	company, resource, ok := respcache.WriteEvent(data)
	if !ok {
		return
	}
	for _, backend := range h.byResource[resource] {
		h.invalidate(context.WithoutCancel(ctx), company, backend)
	}
}
