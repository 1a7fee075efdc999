package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"
)

// memDevices is Memory's part of DeviceStore (under Memory.mu).
type memDevices struct {
	devices map[string]TrustedDevice // id -> device
	byHash  map[string]string        // string(token hash) -> id
	logins  map[string][]LoginTrace  // user id -> pairs, most recent first
}

func cloneDevice(d TrustedDevice) TrustedDevice {
	d.TokenHash = bytes.Clone(d.TokenHash)
	return d
}

func (m *Memory) CreateTrustedDevice(_ context.Context, d TrustedDevice, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[d.UserID]; !ok {
		return fmt.Errorf("create trusted device: user: %w", ErrNotFound)
	}
	if m.deviceMem.devices == nil {
		m.deviceMem.devices, m.deviceMem.byHash = map[string]TrustedDevice{}, map[string]string{}
	}
	if _, ok := m.deviceMem.devices[d.ID]; ok {
		return fmt.Errorf("create trusted device: %w", ErrConflict)
	}
	if _, ok := m.deviceMem.byHash[string(d.TokenHash)]; ok {
		return fmt.Errorf("create trusted device: %w", ErrConflict)
	}
	d = cloneDevice(d)
	d.CreatedAt, d.LastUsedAt, d.ExpiresAt, d.RevokedAt = micro(d.CreatedAt), micro(d.LastUsedAt), micro(d.ExpiresAt), micro(d.RevokedAt)
	m.deviceMem.devices[d.ID] = d
	m.deviceMem.byHash[string(d.TokenHash)] = d.ID
	m.appendLocked(ev)
	return nil
}

func (m *Memory) TrustedDeviceByHash(_ context.Context, hash []byte) (TrustedDevice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.deviceMem.byHash[string(hash)]
	if !ok {
		return TrustedDevice{}, fmt.Errorf("trusted device: %w", ErrNotFound)
	}
	return cloneDevice(m.deviceMem.devices[id]), nil
}

func (m *Memory) TouchTrustedDevice(_ context.Context, userID, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deviceMem.devices[id]
	if !ok || d.UserID != userID {
		return fmt.Errorf("touch trusted device: %w", ErrNotFound)
	}
	d.LastUsedAt = micro(at)
	m.deviceMem.devices[id] = d
	return nil
}

func (m *Memory) ListTrustedDevices(_ context.Context, userID string, now time.Time) ([]TrustedDevice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []TrustedDevice{}
	for _, d := range m.deviceMem.devices {
		if d.UserID == userID && d.Active(now) {
			out = append(out, cloneDevice(d))
		}
	}
	slices.SortFunc(out, func(a, b TrustedDevice) int {
		if c := b.LastUsedAt.Compare(a.LastUsedAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, nil
}

func (m *Memory) RevokeTrustedDevice(_ context.Context, userID, id, reason string, now time.Time, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deviceMem.devices[id]
	if !ok || d.UserID != userID || !d.Active(now) {
		return fmt.Errorf("revoke trusted device: %w", ErrNotFound)
	}
	d.RevokedAt, d.RevokeReason = micro(now), reason
	m.deviceMem.devices[id] = d
	m.appendLocked(ev)
	return nil
}

// revokeDevicesLocked revokes every unrevoked trusted device of the user
// (a password change, a disabled user).
func (m *Memory) revokeDevicesLocked(userID string, now time.Time, reason string) {
	for id, d := range m.deviceMem.devices {
		if d.UserID == userID && d.RevokedAt.IsZero() {
			d.RevokedAt, d.RevokeReason = micro(now), reason
			m.deviceMem.devices[id] = d
		}
	}
}

func (m *Memory) RecordLogin(_ context.Context, tr LoginTrace, keep int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[tr.UserID]; !ok {
		return fmt.Errorf("record login: user: %w", ErrNotFound)
	}
	if m.deviceMem.logins == nil {
		m.deviceMem.logins = map[string][]LoginTrace{}
	}
	tr.At = micro(tr.At)
	list := slices.DeleteFunc(slices.Clone(m.deviceMem.logins[tr.UserID]), func(o LoginTrace) bool {
		same := o.Fingerprint == tr.Fingerprint && o.Network == tr.Network
		if same && o.At.After(tr.At) {
			tr.At = o.At
		}
		return same
	})
	list = append([]LoginTrace{tr}, list...)
	slices.SortStableFunc(list, func(a, b LoginTrace) int { return b.At.Compare(a.At) })
	if keep > 0 && len(list) > keep {
		list = list[:keep]
	}
	m.deviceMem.logins[tr.UserID] = list
	return nil
}

func (m *Memory) RecentLogins(_ context.Context, userID string, since time.Time) ([]LoginTrace, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []LoginTrace{}
	for _, tr := range m.deviceMem.logins[userID] {
		if !tr.At.Before(since) {
			out = append(out, tr)
		}
	}
	return out, nil
}
