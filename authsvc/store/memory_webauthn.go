package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// memWebAuthn is Memory's part of WebAuthnStore (under Memory.mu).
type memWebAuthn struct {
	creds  map[string]WebAuthnCredential // id -> passkey
	byCred map[string]string             // credential id (raw bytes) -> id
}

func cloneWebAuthn(c WebAuthnCredential) WebAuthnCredential {
	c.CredentialID = bytes.Clone(c.CredentialID)
	c.PublicKey = bytes.Clone(c.PublicKey)
	c.AAGUID = bytes.Clone(c.AAGUID)
	c.Transports = slices.Clone(c.Transports)
	return c
}

func (m *Memory) CreateWebAuthnCredential(_ context.Context, cred WebAuthnCredential, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[cred.UserID]; !ok {
		return fmt.Errorf("create webauthn credential: user: %w", ErrNotFound)
	}
	if m.webauthnMem.creds == nil {
		m.webauthnMem.creds, m.webauthnMem.byCred = map[string]WebAuthnCredential{}, map[string]string{}
	}
	if _, ok := m.webauthnMem.creds[cred.ID]; ok {
		return fmt.Errorf("create webauthn credential: %w", ErrConflict)
	}
	if _, ok := m.webauthnMem.byCred[string(cred.CredentialID)]; ok {
		return fmt.Errorf("create webauthn credential: credential id: %w", ErrConflict)
	}
	cred = cloneWebAuthn(cred)
	cred.CreatedAt, cred.LastUsedAt = micro(cred.CreatedAt), micro(cred.LastUsedAt)
	m.webauthnMem.creds[cred.ID] = cred
	m.webauthnMem.byCred[string(cred.CredentialID)] = cred.ID
	m.appendLocked(ev)
	return nil
}

func (m *Memory) ListWebAuthnCredentials(_ context.Context, userID string) ([]WebAuthnCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []WebAuthnCredential{}
	for _, c := range m.webauthnMem.creds {
		if c.UserID == userID {
			out = append(out, cloneWebAuthn(c))
		}
	}
	slices.SortFunc(out, func(a, b WebAuthnCredential) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (m *Memory) FindWebAuthnCredential(_ context.Context, credentialID []byte) (WebAuthnCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.webauthnMem.byCred[string(credentialID)]
	if !ok {
		return WebAuthnCredential{}, fmt.Errorf("find webauthn credential: %w", ErrNotFound)
	}
	return cloneWebAuthn(m.webauthnMem.creds[id]), nil
}

func (m *Memory) UseWebAuthnCredential(_ context.Context, userID, id string, signCount uint32, backupState bool, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.webauthnMem.creds[id]
	if !ok || c.UserID != userID {
		return fmt.Errorf("use webauthn credential: %w", ErrNotFound)
	}
	if !signCountAdvances(c.SignCount, signCount) {
		return fmt.Errorf("use webauthn credential: %w", ErrSignCount)
	}
	c.SignCount, c.BackupState, c.LastUsedAt = signCount, backupState, micro(now)
	m.webauthnMem.creds[id] = c
	return nil
}

func (m *Memory) DeleteWebAuthnCredential(_ context.Context, userID, id string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.webauthnMem.creds[id]
	if !ok || c.UserID != userID {
		return fmt.Errorf("delete webauthn credential: %w", ErrNotFound)
	}
	delete(m.webauthnMem.creds, id)
	delete(m.webauthnMem.byCred, string(c.CredentialID))
	m.appendLocked(ev)
	return nil
}
