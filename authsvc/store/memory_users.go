package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func (m *Memory) CreateUser(_ context.Context, u User, ev Event) error {
	skeleton, err := emailSkeleton(u.Email)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[u.ID]; ok {
		return fmt.Errorf("create user: %w", ErrConflict)
	}
	if _, ok := m.emails[u.Email]; ok {
		return fmt.Errorf("create user: %w", ErrConflict)
	}
	if _, ok := m.skeletons[skeleton]; ok {
		return fmt.Errorf("create user: %w", ErrConflict)
	}
	u.CreatedAt, u.PasswordChangedAt = micro(u.CreatedAt), micro(u.PasswordChangedAt)
	m.users[u.ID] = u
	m.emails[u.Email] = u.ID
	m.skeletons[skeleton] = u.ID
	m.appendLocked(ev)
	return nil
}

func (m *Memory) GetUser(_ context.Context, id string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return User{}, fmt.Errorf("get user: %w", ErrNotFound)
	}
	return u, nil
}

func (m *Memory) GetUserByEmail(_ context.Context, email string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.emails[email]
	if !ok {
		return User{}, fmt.Errorf("get user by email: %w", ErrNotFound)
	}
	return m.users[id], nil
}

func (m *Memory) ListUsers(_ context.Context, p Page) ([]User, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := make([]User, 0, len(m.users))
	for _, u := range m.users {
		all = append(all, u)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Email < all[j].Email })
	return pageOf(all, p), int64(len(all)), nil
}

func (m *Memory) SetPasswordHash(_ context.Context, userID, hash, keepSession string, now time.Time, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return nil, fmt.Errorf("set password: %w", ErrNotFound)
	}
	u.PasswordHash, u.PasswordChangedAt = hash, micro(now)
	m.users[userID] = u
	ids := m.revokeLocked(sessionScope{userID: userID, except: keepSession}, now, reasonPasswordChanged)
	m.revokeDevicesLocked(userID, now, DeviceRevokedPasswordChange)
	m.appendLocked(ev)
	return ids, nil
}

func (m *Memory) ReplacePasswordHash(_ context.Context, userID, old, next string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return false, fmt.Errorf("replace password hash: %w", ErrNotFound)
	}
	if u.PasswordHash != old {
		return false, nil
	}
	u.PasswordHash = next
	m.users[userID] = u
	return true, nil
}

func (m *Memory) UpdateUser(_ context.Context, userID string, upd UserUpdate, now time.Time, ev Event) (User, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return User{}, nil, fmt.Errorf("update user: %w", ErrNotFound)
	}
	if upd.Name != nil {
		u.Name = *upd.Name
	}
	if upd.PlatformAdmin != nil {
		u.PlatformAdmin = *upd.PlatformAdmin
	}
	if upd.Disabled != nil {
		u.Disabled = *upd.Disabled
	}
	if upd.Locked != nil {
		u.Locked = *upd.Locked
	}
	m.users[userID] = u
	ids := []string{}
	if upd.Disabled != nil && *upd.Disabled {
		ids = m.revokeLocked(sessionScope{userID: userID}, now, reasonUserDisabled)
		m.revokeDevicesLocked(userID, now, DeviceRevokedUserDisabled)
	}
	m.appendLocked(ev)
	return u, ids, nil
}
