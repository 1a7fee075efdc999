package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

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

func (m *Memory) GetCompany(_ context.Context, id string) (Company, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.companies[id]
	if !ok {
		return Company{}, fmt.Errorf("get company: %w", ErrNotFound)
	}
	return c, nil
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
		ids = m.revokeLocked(sessionScope{companyID: id}, now, reasonCompanyDisabled)
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
