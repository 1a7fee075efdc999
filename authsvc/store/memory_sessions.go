package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func (m *Memory) CreateSession(_ context.Context, s Session, rt RefreshToken, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.ID]; ok {
		return fmt.Errorf("create session: %w", ErrConflict)
	}
	if _, ok := m.users[s.UserID]; !ok {
		return fmt.Errorf("create session: user: %w", ErrNotFound)
	}
	if _, ok := m.refresh[string(rt.Hash)]; ok {
		return fmt.Errorf("create session: refresh token: %w", ErrConflict)
	}
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = micro(s.CreatedAt), micro(s.LastUsedAt), micro(s.ExpiresAt)
	s.RevokedAt = time.Time{}
	m.sessions[s.ID] = s
	m.refresh[string(rt.Hash)] = &memRefresh{sessionID: s.ID, expiresAt: micro(rt.ExpiresAt)}
	m.appendLocked(ev)
	return nil
}

func (m *Memory) RotateRefreshToken(_ context.Context, old []byte, next RefreshToken, use Use, ev Event) (RefreshResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.refresh[string(old)]
	if !ok {
		return RefreshResult{}, fmt.Errorf("rotate refresh token: %w", ErrNotFound)
	}
	s := m.sessions[t.sessionID]
	ev.ActorID, ev.CompanyID, ev.SubjectID = s.UserID, s.CompanyID, s.ID
	if t.used {
		if s.RevokedAt.IsZero() {
			s = m.revokeSessionLocked(s, use.Now, reasonRefreshReuse)
		}
		ev.Type = EventRefreshReuse
		m.appendLocked(ev)
		return RefreshResult{Session: s}, fmt.Errorf("rotate refresh token: %w", ErrRefreshReused)
	}
	if !s.Active(use.Now) || !use.Now.Before(t.expiresAt) {
		return RefreshResult{}, fmt.Errorf("rotate refresh token: %w", ErrSessionInactive)
	}
	if _, ok := m.refresh[string(next.Hash)]; ok {
		return RefreshResult{}, fmt.Errorf("rotate refresh token: %w", ErrConflict)
	}
	t.used = true
	exp := micro(next.ExpiresAt)
	if exp.After(s.ExpiresAt) {
		exp = s.ExpiresAt
	}
	m.refresh[string(next.Hash)] = &memRefresh{sessionID: s.ID, expiresAt: exp}
	s.LastUsedAt, s.IP, s.UserAgent = micro(use.Now), use.IP, use.UserAgent
	m.sessions[s.ID] = s
	a, member := m.accessLocked(s.UserID, s.CompanyID)
	if !member {
		if u, ok := m.users[s.UserID]; ok {
			a = Access{UserID: s.UserID, UserDisabled: u.Disabled}
		}
	}
	m.appendLocked(ev)
	return RefreshResult{Session: s, Access: a, Member: member}, nil
}

func (m *Memory) SwitchCompany(_ context.Context, userID, sessionID, companyID string, next RefreshToken, use Use, ev Event) (SwitchResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return SwitchResult{}, fmt.Errorf("switch company: user: %w", ErrNoAccess)
	}
	r := SwitchResult{PlatformAdmin: u.PlatformAdmin}
	r.Access, r.Member = m.accessLocked(userID, companyID)
	if !r.Member {
		r.Access = Access{UserID: userID, UserDisabled: u.Disabled, Roles: []string{}}
		if c, ok := m.companies[companyID]; ok {
			r.Access.Company = c
		}
	}
	if r.Access.Company.ID == "" || r.Access.UserDisabled || r.Access.Company.Disabled || (!r.Member && !r.PlatformAdmin) {
		return r, fmt.Errorf("switch company: %w", ErrNoAccess)
	}
	s, ok := m.sessions[sessionID]
	if !ok || s.UserID != userID || !s.Active(use.Now) {
		return r, fmt.Errorf("switch company: session: %w", ErrNotFound)
	}
	if _, ok := m.refresh[string(next.Hash)]; ok {
		return SwitchResult{}, fmt.Errorf("switch company: %w", ErrConflict)
	}
	for _, t := range m.refresh {
		if t.sessionID == sessionID {
			t.used = true
		}
	}
	exp := micro(next.ExpiresAt)
	if exp.After(s.ExpiresAt) {
		exp = s.ExpiresAt
	}
	m.refresh[string(next.Hash)] = &memRefresh{sessionID: sessionID, expiresAt: exp}
	s.CompanyID, s.LastUsedAt, s.IP, s.UserAgent = companyID, micro(use.Now), use.IP, use.UserAgent
	m.sessions[sessionID] = s
	m.appendLocked(ev)
	r.Session = s
	return r, nil
}

func (m *Memory) GetSession(_ context.Context, userID, sessionID string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[sessionID]
	if !ok || s.UserID != userID {
		return Session{}, fmt.Errorf("get session: %w", ErrNotFound)
	}
	return s, nil
}

func (m *Memory) ListSessions(_ context.Context, userID string, now time.Time) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Session{}
	for _, s := range m.sessions {
		if s.UserID == userID && s.Active(now) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LastUsedAt.Equal(out[j].LastUsedAt) {
			return out[i].LastUsedAt.After(out[j].LastUsedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (m *Memory) RevokeSession(_ context.Context, userID, sessionID string, now time.Time, reason string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[sessionID]
	if !ok || s.UserID != userID || !s.RevokedAt.IsZero() {
		return fmt.Errorf("revoke session: %w", ErrNotFound)
	}
	m.revokeSessionLocked(s, now, reason)
	m.appendLocked(ev)
	return nil
}

func (m *Memory) RevokeUserSessions(_ context.Context, userID string, now time.Time, reason string, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := m.revokeLocked(sessionScope{userID: userID}, now, reason)
	m.appendLocked(ev)
	return ids, nil
}
