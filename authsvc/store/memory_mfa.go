package store

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

func (m *Memory) PutPendingTOTP(_ context.Context, t TOTP, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[t.UserID]; !ok {
		return fmt.Errorf("put pending totp: user: %w", ErrNotFound)
	}
	if cur, ok := m.totp[t.UserID]; ok && cur.Active() {
		return fmt.Errorf("put pending totp: %w", ErrConflict)
	}
	t.SealedSecret = bytes.Clone(t.SealedSecret)
	t.CreatedAt, t.ConfirmedAt = micro(t.CreatedAt), time.Time{}
	m.totp[t.UserID] = t
	m.appendLocked(ev)
	return nil
}

func (m *Memory) GetTOTP(_ context.Context, userID string) (TOTP, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.totp[userID]
	if !ok {
		return TOTP{}, fmt.Errorf("get totp: %w", ErrNotFound)
	}
	t.SealedSecret = bytes.Clone(t.SealedSecret)
	return t, nil
}

func (m *Memory) ConfirmTOTP(_ context.Context, userID string, recoveryHashes [][]byte, now time.Time, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.totp[userID]
	if !ok || t.Active() {
		return fmt.Errorf("confirm totp: %w", ErrNotFound)
	}
	t.ConfirmedAt = micro(now)
	m.totp[userID] = t
	codes := make(map[string]bool, len(recoveryHashes))
	for _, h := range recoveryHashes {
		codes[string(h)] = false
	}
	m.recovery[userID] = codes
	m.appendLocked(ev)
	return nil
}

func (m *Memory) DeleteTOTP(_ context.Context, userID string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.totp[userID]; !ok {
		return fmt.Errorf("delete totp: %w", ErrNotFound)
	}
	delete(m.totp, userID)
	delete(m.recovery, userID)
	m.appendLocked(ev)
	return nil
}

func (m *Memory) UseRecoveryCode(_ context.Context, userID string, hash []byte, now time.Time, ev Event) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	codes := m.recovery[userID]
	used, ok := codes[string(hash)]
	if !ok || used {
		return 0, fmt.Errorf("use recovery code: %w", ErrNotFound)
	}
	codes[string(hash)] = true
	left := 0
	for _, u := range codes {
		if !u {
			left++
		}
	}
	m.appendLocked(ev)
	return left, nil
}
