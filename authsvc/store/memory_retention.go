package store

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

func (m *Memory) PurgeExpired(_ context.Context, before time.Time, limit int) (PurgeCounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	before = micro(before)
	var c PurgeCounts
	ended := func(expires, revoked time.Time) bool {
		return expires.Before(before) || (!revoked.IsZero() && revoked.Before(before))
	}
	gone := map[string]bool{}
	for id, s := range m.sessions {
		if c.Sessions >= int64(limit) {
			break
		}
		if ended(s.ExpiresAt, s.RevokedAt) {
			delete(m.sessions, id)
			gone[id] = true
			c.Sessions++
		}
	}
	for h, r := range m.refresh {
		switch {
		case gone[r.sessionID]: // with its session, as ON DELETE CASCADE does
			delete(m.refresh, h)
		case c.RefreshTokens < int64(limit) && r.expiresAt.Before(before):
			delete(m.refresh, h)
			c.RefreshTokens++
		}
	}
	for id, d := range m.deviceMem.devices {
		if c.TrustedDevices >= int64(limit) {
			break
		}
		if ended(d.ExpiresAt, d.RevokedAt) {
			delete(m.deviceMem.devices, id)
			delete(m.deviceMem.byHash, string(d.TokenHash))
			c.TrustedDevices++
		}
	}
	return c, nil
}

func (m *Memory) AuditCheckpoints(context.Context) ([]AuditCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.auditCut == nil {
		return []AuditCheckpoint{}, nil
	}
	c := *m.auditCut
	c.Hash, c.Signature = bytes.Clone(c.Hash), bytes.Clone(c.Signature)
	return []AuditCheckpoint{c}, nil
}

// PruneAudit cuts the memory trail, one chain, like a Postgres stripe.
func (m *Memory) PruneAudit(_ context.Context, before time.Time, limit int, key AuditKey, now time.Time) (int64, error) {
	if key.IsZero() {
		return 0, fmt.Errorf("prune audit: %w", errNoAuditKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	pending := int64(-1) // the oldest record not yet published as an event
	for _, seq := range m.events {
		if pending < 0 || seq < pending {
			pending = seq
		}
	}
	for seq := range m.eventsHeld {
		if pending < 0 || seq < pending {
			pending = seq
		}
	}
	cut := -1
	for i, e := range m.audit {
		if i >= limit || !e.Time.Before(before) || (pending >= 0 && e.Seq >= pending) {
			break
		}
		cut = i
	}
	if cut < 0 {
		return 0, nil
	}
	last := m.audit[cut]
	var removed int64
	if m.auditCut != nil {
		removed = m.auditCut.Removed
	}
	n := int64(cut + 1)
	c := AuditCheckpoint{Stripe: 0, Seq: last.Seq, Hash: bytes.Clone(last.Hash), CutAt: now, Removed: removed + n}.sign(key)
	m.auditCut = &c
	m.audit = append([]Event(nil), m.audit[cut+1:]...)
	return n, nil
}

func (m *Memory) VerifyAuditWith(_ context.Context, key AuditKey) (AuditCheck, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := newChainVerifier()
	v.key = key
	if m.auditCut != nil {
		if problem := m.auditCut.check(key); problem != "" {
			return AuditCheck{BadSeq: m.auditCut.Seq, Problem: problem}, nil
		}
		v.startAt(*m.auditCut)
	}
	for _, e := range m.audit {
		if !v.next(e) {
			break
		}
	}
	c := v.finish(m.headSeq, m.headHash)
	if c.OK && m.auditCut != nil {
		c.Checkpoints = 1
	}
	return c, nil
}
