package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

func cloneKey(k APIKey) APIKey {
	k.SecretHash = bytes.Clone(k.SecretHash)
	k.PrevSecretHash = bytes.Clone(k.PrevSecretHash)
	k.Scope = slices.Clone(k.Scope)
	return k
}

func (m *Memory) CreateAPIKey(_ context.Context, k APIKey, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.apiKeys[k.ID]; ok {
		return fmt.Errorf("create api key: %w", ErrConflict)
	}
	if _, ok := m.prefixes[k.Prefix]; ok {
		return fmt.Errorf("create api key: %w", ErrConflict)
	}
	if _, ok := m.companies[k.CompanyID]; !ok {
		return fmt.Errorf("create api key: company: %w", ErrNotFound)
	}
	k = cloneKey(k)
	k.CreatedAt, k.ExpiresAt, k.PrevExpiresAt = micro(k.CreatedAt), micro(k.ExpiresAt), micro(k.PrevExpiresAt)
	k.RevokedAt, k.LastUsedAt, k.UseCount = time.Time{}, time.Time{}, 0
	m.apiKeys[k.ID] = k
	m.prefixes[k.Prefix] = k.ID
	m.appendLocked(ev)
	return nil
}

func (m *Memory) ListAPIKeys(_ context.Context, companyID string) ([]APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []APIKey{}
	for _, k := range m.apiKeys {
		if k.CompanyID == companyID {
			out = append(out, cloneKey(k))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (m *Memory) GetAPIKey(_ context.Context, companyID, id string) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.apiKeys[id]
	if !ok || k.CompanyID != companyID {
		return APIKey{}, fmt.Errorf("get api key: %w", ErrNotFound)
	}
	return cloneKey(k), nil
}

func (m *Memory) RotateAPIKey(_ context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time, ev Event) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.apiKeys[id]
	if !ok || k.CompanyID != companyID || !k.RevokedAt.IsZero() {
		return APIKey{}, fmt.Errorf("rotate api key: %w", ErrNotFound)
	}
	k.PrevSecretHash, k.PrevExpiresAt = k.SecretHash, micro(graceUntil)
	k.SecretHash = bytes.Clone(newHash)
	m.apiKeys[id] = k
	m.outboxLocked(RotatedAPIKey, id, now)
	m.appendLocked(ev)
	return cloneKey(k), nil
}

func (m *Memory) RevokeAPIKey(_ context.Context, companyID, id string, now time.Time, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.apiKeys[id]
	if !ok || k.CompanyID != companyID || !k.RevokedAt.IsZero() {
		return fmt.Errorf("revoke api key: %w", ErrNotFound)
	}
	k.RevokedAt = micro(now)
	m.apiKeys[id] = k
	m.outboxLocked(RevokedAPIKey, id, now)
	m.appendLocked(ev)
	return nil
}

func (m *Memory) FindAPIKey(_ context.Context, prefix string) (APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.prefixes[prefix]
	if !ok {
		return APIKey{}, fmt.Errorf("find api key: %w", ErrNotFound)
	}
	return cloneKey(m.apiKeys[id]), nil
}

func (m *Memory) RecordAPIKeyUses(_ context.Context, uses []APIKeyUse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range uses {
		k, ok := m.apiKeys[u.ID]
		if !ok {
			continue
		}
		k.UseCount += u.Count
		if lu := micro(u.LastUsed); lu.After(k.LastUsedAt) {
			k.LastUsedAt = lu
		}
		m.apiKeys[u.ID] = k
	}
	return nil
}
