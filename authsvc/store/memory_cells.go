package store

import (
	"context"
	"fmt"
	"maps"
)

func (m *Memory) SetCompanyCell(_ context.Context, companyID, cell string, ev Event) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.companies[companyID]; !ok {
		return "", fmt.Errorf("set company cell: %w", ErrNotFound)
	}
	prev := m.cells[companyID]
	if m.cells == nil {
		m.cells = map[string]string{}
	}
	if cell == "" {
		delete(m.cells, companyID)
	} else {
		m.cells[companyID] = cell
	}
	m.appendLocked(ev)
	return prev, nil
}

func (m *Memory) CompanyCell(_ context.Context, companyID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.companies[companyID]; !ok {
		return "", fmt.Errorf("company cell: %w", ErrNotFound)
	}
	return m.cells[companyID], nil
}

func (m *Memory) CompanyCells(context.Context) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.cells), nil
}
