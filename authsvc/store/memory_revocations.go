package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// outboxLocked records a revocation to deliver (m.mu held).
func (m *Memory) outboxLocked(kind RevocationKind, id string, at time.Time) {
	m.outboxSeq++
	m.outbox = append(m.outbox, Revocation{Seq: m.outboxSeq, Kind: kind, SubjectID: id, At: micro(at)})
}

func (m *Memory) PendingRevocations(_ context.Context, limit int) ([]Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.outbox[:min(limit, len(m.outbox))]), nil
}

func (m *Memory) DeleteRevocations(_ context.Context, seqs []int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outbox = slices.DeleteFunc(m.outbox, func(r Revocation) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

func (m *Memory) EnqueueRevocations(_ context.Context, rs []Revocation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		if !r.Kind.valid() {
			return fmt.Errorf("enqueue revocations: unknown kind %q", r.Kind)
		}
	}
	for _, r := range rs {
		m.outboxLocked(r.Kind, r.SubjectID, r.At)
	}
	return nil
}
