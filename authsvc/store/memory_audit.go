package store

import (
	"bytes"
	"context"
	"maps"
)

func (m *Memory) AppendAudit(_ context.Context, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appendLocked(ev)
	return nil
}

func cloneEvent(e Event) Event {
	e.Details = maps.Clone(e.Details)
	e.PrevHash, e.Hash, e.Erasure = bytes.Clone(e.PrevHash), bytes.Clone(e.Hash), bytes.Clone(e.Erasure)
	return e
}

func (m *Memory) ListAudit(_ context.Context, f AuditFilter, p Page) ([]Event, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []Event
	for i := len(m.audit) - 1; i >= 0; i-- {
		if f.match(m.audit[i]) {
			all = append(all, m.audit[i])
		}
	}
	out := pageOf(all, p)
	for i := range out {
		out[i] = cloneEvent(out[i])
	}
	return out, int64(len(all)), nil
}

func (m *Memory) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	return m.VerifyAuditWith(ctx, AuditKey{})
}
