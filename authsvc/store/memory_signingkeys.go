package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/erpgate/erpgate/contract"
)

func (m *Memory) ListSigningKeys(_ context.Context, purpose KeyPurpose) ([]SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, ok := m.signing[purpose]
	if !ok {
		return nil, fmt.Errorf("list signing keys: unknown purpose %q", purpose)
	}
	out := make([]SigningKey, 0, len(keys))
	for _, k := range keys {
		k.PublicKey, k.SealedPrivate = bytes.Clone(k.PublicKey), bytes.Clone(k.SealedPrivate)
		out = append(out, k)
	}
	sortSigningKeys(out)
	return out, nil
}

func (m *Memory) AddSigningKey(_ context.Context, purpose KeyPurpose, k SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, ok := m.signing[purpose]
	if !ok {
		return fmt.Errorf("add signing key: unknown purpose %q", purpose)
	}
	if (purpose == KeyAssertion) != strings.HasPrefix(k.KID, contract.AssertionKIDPrefix) {
		// what the tables' CHECK constraints say
		return fmt.Errorf("add signing key: the kid of a %s key must not start with %q unless it is an assertion key", purpose, contract.AssertionKIDPrefix)
	}
	if _, ok := keys[k.KID]; ok {
		return fmt.Errorf("add signing key: %w", ErrConflict)
	}
	k.CreatedAt, k.ActivatesAt = micro(k.CreatedAt), micro(k.ActivatesAt)
	k.PublicKey, k.SealedPrivate = bytes.Clone(k.PublicKey), bytes.Clone(k.SealedPrivate)
	keys[k.KID] = k
	return nil
}

func (m *Memory) DeleteSigningKey(_ context.Context, purpose KeyPurpose, kid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, ok := m.signing[purpose]
	if !ok {
		return fmt.Errorf("delete signing key: unknown purpose %q", purpose)
	}
	if _, ok := keys[kid]; !ok {
		return fmt.Errorf("delete signing key: %w", ErrNotFound)
	}
	delete(keys, kid)
	return nil
}

// sortSigningKeys orders keys by activation, oldest first.
func sortSigningKeys(ks []SigningKey) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].ActivatesAt.Equal(ks[j].ActivatesAt) {
			return ks[i].ActivatesAt.Before(ks[j].ActivatesAt)
		}
		return ks[i].KID < ks[j].KID
	})
}
