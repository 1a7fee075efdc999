package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

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
			ids = m.revokeLocked(sessionScope{userID: ms.UserID, companyID: ms.CompanyID}, now, reasonRolesChanged)
		}
	}
	m.memberships[ms.UserID][ms.CompanyID] = ms
	m.appendLocked(ev)
	return ids, nil
}

func (m *Memory) DeleteMembership(_ context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.memberships[userID][companyID]; !ok {
		return nil, fmt.Errorf("delete membership: %w", ErrNotFound)
	}
	delete(m.memberships[userID], companyID)
	ids := m.revokeLocked(sessionScope{userID: userID, companyID: companyID}, now, reasonMembershipRemoved)
	m.appendLocked(ev)
	return ids, nil
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
