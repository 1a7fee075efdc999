package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// memFactors is Memory's part of FactorStore (under Memory.mu).
type memFactors struct {
	factors map[string]map[string]Factor // user id -> kind -> factor
}

func cloneFactor(f Factor) Factor {
	f.SealedPhone = bytes.Clone(f.SealedPhone)
	return f
}

func (m *Memory) PutPendingFactor(_ context.Context, f Factor, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[f.UserID]; !ok {
		return fmt.Errorf("put pending factor: user: %w", ErrNotFound)
	}
	if m.factorMem.factors == nil {
		m.factorMem.factors = map[string]map[string]Factor{}
	}
	mine := m.factorMem.factors[f.UserID]
	if cur, ok := mine[f.Kind]; ok && cur.Active() {
		return fmt.Errorf("put pending factor: %w", ErrConflict)
	}
	if mine == nil {
		mine = map[string]Factor{}
		m.factorMem.factors[f.UserID] = mine
	}
	f = cloneFactor(f)
	f.CreatedAt, f.ConfirmedAt = micro(f.CreatedAt), time.Time{}
	mine[f.Kind] = f
	m.appendLocked(ev)
	return nil
}

func (m *Memory) GetFactor(_ context.Context, userID, kind string) (Factor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.factorMem.factors[userID][kind]
	if !ok {
		return Factor{}, fmt.Errorf("get factor: %w", ErrNotFound)
	}
	return cloneFactor(f), nil
}

func (m *Memory) ListFactors(_ context.Context, userID string) ([]Factor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Factor{}
	for _, f := range m.factorMem.factors[userID] {
		out = append(out, cloneFactor(f))
	}
	slices.SortFunc(out, func(a, b Factor) int { return strings.Compare(a.Kind, b.Kind) })
	return out, nil
}

func (m *Memory) ConfirmFactor(_ context.Context, userID, kind string, now time.Time, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.factorMem.factors[userID][kind]
	if !ok || f.Active() {
		return fmt.Errorf("confirm factor: %w", ErrNotFound)
	}
	f.ConfirmedAt = micro(now)
	m.factorMem.factors[userID][kind] = f
	m.appendLocked(ev)
	return nil
}

func (m *Memory) DeleteFactor(_ context.Context, userID, kind string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.factorMem.factors[userID][kind]; !ok {
		return fmt.Errorf("delete factor: %w", ErrNotFound)
	}
	delete(m.factorMem.factors[userID], kind)
	m.appendLocked(ev)
	return nil
}
