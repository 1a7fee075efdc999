package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/erpgate/erpgate/contract"
)

// Memory is the in-process Store of the embedded default. One mutex guards
// everything: operations are short and this keeps every compound step
// (rotation, revocation of a family) atomic, as the Postgres statements are.
type Memory struct {
	mu          sync.Mutex
	companies   map[string]Company
	users       map[string]User
	emails      map[string]string                // email -> user id
	skeletons   map[string]string                // email skeleton -> user id
	memberships map[string]map[string]Membership // user id -> company id -> membership
	sessions    map[string]Session
	refresh     map[string]*memRefresh // string(hash) -> token
	apiKeys     map[string]APIKey
	prefixes    map[string]string // prefix -> key id
	signing     map[KeyPurpose]map[string]SigningKey
	totp        map[string]TOTP
	recovery    map[string]map[string]bool // user id -> string(hash) -> used
	audit       []Event
	headSeq     int64
	headHash    []byte
	outbox      []Revocation // undelivered revocations, oldest first
	outboxSeq   int64
}

type memRefresh struct {
	sessionID string
	expiresAt time.Time
	used      bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		companies:   map[string]Company{},
		users:       map[string]User{},
		emails:      map[string]string{},
		skeletons:   map[string]string{},
		memberships: map[string]map[string]Membership{},
		sessions:    map[string]Session{},
		refresh:     map[string]*memRefresh{},
		apiKeys:     map[string]APIKey{},
		prefixes:    map[string]string{},
		signing:     map[KeyPurpose]map[string]SigningKey{KeyAccess: {}, KeyAssertion: {}},
		totp:        map[string]TOTP{},
		recovery:    map[string]map[string]bool{},
		headHash:    GenesisHash,
	}
}

// appendLocked appends ev to the trail (m.mu held).
func (m *Memory) appendLocked(ev Event) {
	ev = ev.seal(m.headSeq+1, m.headHash)
	m.audit = append(m.audit, ev)
	m.headSeq, m.headHash = ev.Seq, ev.Hash
}

func (m *Memory) CreateCompany(_ context.Context, c Company, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.companies[c.ID]; ok {
		return fmt.Errorf("create company: %w", ErrConflict)
	}
	c.CreatedAt = micro(c.CreatedAt)
	m.companies[c.ID] = c
	m.appendLocked(ev)
	return nil
}

func (m *Memory) UpdateCompany(_ context.Context, id string, upd CompanyUpdate, now time.Time, ev Event) (Company, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.companies[id]
	if !ok {
		return Company{}, nil, fmt.Errorf("update company: %w", ErrNotFound)
	}
	if upd.Name != nil {
		c.Name = *upd.Name
	}
	if upd.Plan != nil {
		c.Plan = *upd.Plan
	}
	if upd.Disabled != nil {
		c.Disabled = *upd.Disabled
	}
	m.companies[id] = c
	ids := []string{}
	if c.Disabled {
		for sid, ss := range m.sessions {
			if ss.CompanyID == id && ss.RevokedAt.IsZero() {
				ss.RevokedAt, ss.RevokeReason = micro(now), "company_disabled"
				m.sessions[sid] = ss
				m.outboxLocked(RevokedSession, sid, now)
				ids = append(ids, sid)
			}
		}
		sort.Strings(ids)
	}
	m.appendLocked(ev)
	return c, ids, nil
}

func (m *Memory) ListCompanies(_ context.Context, p Page) ([]Company, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := make([]Company, 0, len(m.companies))
	for _, c := range m.companies {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return pageOf(all, p), int64(len(all)), nil
}

// pageOf is the slice of all that p selects (a copy).
func pageOf[T any](all []T, p Page) []T {
	if p.Offset >= len(all) || p.Limit <= 0 {
		return []T{}
	}
	end := min(len(all), p.Offset+p.Limit)
	return slices.Clone(all[p.Offset:end])
}

func (m *Memory) GetCompany(_ context.Context, id string) (Company, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.companies[id]
	if !ok {
		return Company{}, fmt.Errorf("get company: %w", ErrNotFound)
	}
	return c, nil
}

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

func (m *Memory) SetPasswordHash(_ context.Context, userID, hash, keepSession string, now time.Time, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return nil, fmt.Errorf("set password: %w", ErrNotFound)
	}
	u.PasswordHash, u.PasswordChangedAt = hash, micro(now)
	m.users[userID] = u
	ids := []string{}
	for id, s := range m.sessions {
		if s.UserID == userID && s.RevokedAt.IsZero() && id != keepSession {
			s.RevokedAt, s.RevokeReason = micro(now), "password_changed"
			m.sessions[id] = s
			m.outboxLocked(RevokedSession, id, now)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
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
	m.users[userID] = u
	ids := []string{}
	if upd.Disabled != nil && *upd.Disabled {
		ids = m.revokeUserLocked(userID, now, "user_disabled")
	}
	m.appendLocked(ev)
	return u, ids, nil
}

// revokeMemberLocked revokes the user's active sessions bound to the company.
func (m *Memory) revokeMemberLocked(userID, companyID string, now time.Time, reason string) []string {
	ids := []string{}
	for id, s := range m.sessions {
		if s.UserID == userID && s.CompanyID == companyID && s.RevokedAt.IsZero() {
			s.RevokedAt, s.RevokeReason = micro(now), reason
			m.sessions[id] = s
			m.outboxLocked(RevokedSession, id, now)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (m *Memory) PutMembership(_ context.Context, ms Membership, now time.Time, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[ms.UserID]; !ok {
		return nil, fmt.Errorf("put membership: user: %w", ErrNotFound)
	}
	if _, ok := m.companies[ms.CompanyID]; !ok {
		return nil, fmt.Errorf("put membership: company: %w", ErrNotFound)
	}
	if m.memberships[ms.UserID] == nil {
		m.memberships[ms.UserID] = map[string]Membership{}
	}
	ids := []string{}
	old, existed := m.memberships[ms.UserID][ms.CompanyID]
	ms.Roles = slices.Clone(ms.Roles)
	ms.CreatedAt = micro(ms.CreatedAt)
	if existed {
		ms.CreatedAt = old.CreatedAt
		if !sameRoles(old.Roles, ms.Roles) {
			ids = m.revokeMemberLocked(ms.UserID, ms.CompanyID, now, "roles_changed")
		}
	}
	m.memberships[ms.UserID][ms.CompanyID] = ms
	m.appendLocked(ev)
	return ids, nil
}

// sameRoles compares role sets.
func sameRoles(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (m *Memory) DeleteMembership(_ context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.memberships[userID][companyID]; !ok {
		return nil, fmt.Errorf("delete membership: %w", ErrNotFound)
	}
	delete(m.memberships[userID], companyID)
	ids := m.revokeMemberLocked(userID, companyID, now, "membership_removed")
	m.appendLocked(ev)
	return ids, nil
}

func (m *Memory) FindMemberships(_ context.Context, f MembershipFilter, p Page) ([]MembershipView, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := []MembershipView{}
	for uid, byCompany := range m.memberships {
		if f.UserID != "" && uid != f.UserID {
			continue
		}
		for cid, ms := range byCompany {
			if f.CompanyID != "" && cid != f.CompanyID {
				continue
			}
			ms.Roles = slices.Clone(ms.Roles)
			all = append(all, MembershipView{Membership: ms, Email: m.users[uid].Email})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].CompanyID != all[j].CompanyID {
			return all[i].CompanyID < all[j].CompanyID
		}
		return all[i].Email < all[j].Email
	})
	return pageOf(all, p), int64(len(all)), nil
}

func (m *Memory) accessLocked(userID, companyID string) (Access, bool) {
	ms, ok := m.memberships[userID][companyID]
	if !ok {
		return Access{}, false
	}
	u, uok := m.users[userID]
	c, cok := m.companies[companyID]
	if !uok || !cok {
		return Access{}, false
	}
	return Access{UserID: userID, UserDisabled: u.Disabled, Company: c, Roles: slices.Clone(ms.Roles)}, true
}

func (m *Memory) GetAccess(_ context.Context, userID, companyID string) (Access, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accessLocked(userID, companyID)
	if !ok {
		return Access{}, fmt.Errorf("get access: %w", ErrNotFound)
	}
	return a, nil
}

func (m *Memory) ListMemberships(_ context.Context, userID string) ([]CompanyMembership, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []CompanyMembership{}
	for cid, ms := range m.memberships[userID] {
		if c, ok := m.companies[cid]; ok {
			out = append(out, CompanyMembership{Company: c, Roles: slices.Clone(ms.Roles)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Company.ID < out[j].Company.ID })
	return out, nil
}

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
			s.RevokedAt, s.RevokeReason = micro(use.Now), "refresh_reuse"
			m.sessions[s.ID] = s
			m.outboxLocked(RevokedSession, s.ID, use.Now)
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
	s.RevokedAt, s.RevokeReason = micro(now), reason
	m.sessions[sessionID] = s
	m.outboxLocked(RevokedSession, sessionID, now)
	m.appendLocked(ev)
	return nil
}

func (m *Memory) RevokeUserSessions(_ context.Context, userID string, now time.Time, reason string, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := m.revokeUserLocked(userID, now, reason)
	m.appendLocked(ev)
	return ids, nil
}

func (m *Memory) revokeUserLocked(userID string, now time.Time, reason string) []string {
	ids := []string{}
	for id, s := range m.sessions {
		if s.UserID == userID && s.RevokedAt.IsZero() {
			s.RevokedAt, s.RevokeReason = micro(now), reason
			m.sessions[id] = s
			m.outboxLocked(RevokedSession, id, now)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

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

var _ Store = (*Memory)(nil)
