package store

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
)

// memSSO is Memory's part of SSOStore (under Memory.mu).
type memSSO struct {
	conns   map[string]SSOConnection // id -> connection
	domains map[string]string        // domain -> connection id
}

func cloneSSO(c SSOConnection) SSOConnection {
	c.Domains = slices.Clone(c.Domains)
	c.Scopes = slices.Clone(c.Scopes)
	c.Claims = maps.Clone(c.Claims)
	c.SealedClientSecret = bytes.Clone(c.SealedClientSecret)
	c.IdPMetadataXML = bytes.Clone(c.IdPMetadataXML)
	c.SealedSPKey = bytes.Clone(c.SealedSPKey)
	c.SPCert = bytes.Clone(c.SPCert)
	return c
}

func (m *Memory) CreateSSOConnection(_ context.Context, conn SSOConnection, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.companies[conn.CompanyID]; !ok {
		return fmt.Errorf("create sso connection: company: %w", ErrNotFound)
	}
	if m.ssoMem.conns == nil {
		m.ssoMem.conns, m.ssoMem.domains = map[string]SSOConnection{}, map[string]string{}
	}
	if _, ok := m.ssoMem.conns[conn.ID]; ok {
		return fmt.Errorf("create sso connection: %w", ErrConflict)
	}
	for _, d := range conn.Domains {
		if _, ok := m.ssoMem.domains[d]; ok {
			return fmt.Errorf("create sso connection: domain %s: %w", d, ErrConflict)
		}
	}
	conn = cloneSSO(conn)
	conn.CreatedAt = micro(conn.CreatedAt)
	m.ssoMem.conns[conn.ID] = conn
	for _, d := range conn.Domains {
		m.ssoMem.domains[d] = conn.ID
	}
	m.appendLocked(ev)
	return nil
}

func (m *Memory) ListSSOConnections(_ context.Context, companyID string) ([]SSOConnection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []SSOConnection{}
	for _, c := range m.ssoMem.conns {
		if c.CompanyID == companyID {
			out = append(out, cloneSSO(c))
		}
	}
	slices.SortFunc(out, func(a, b SSOConnection) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, nil
}

func (m *Memory) GetSSOConnection(_ context.Context, companyID, id string) (SSOConnection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.ssoMem.conns[id]
	if !ok || c.CompanyID != companyID {
		return SSOConnection{}, fmt.Errorf("get sso connection: %w", ErrNotFound)
	}
	return cloneSSO(c), nil
}

func (m *Memory) DeleteSSOConnection(_ context.Context, companyID, id string, ev Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.ssoMem.conns[id]
	if !ok || c.CompanyID != companyID {
		return fmt.Errorf("delete sso connection: %w", ErrNotFound)
	}
	delete(m.ssoMem.conns, id)
	for _, d := range c.Domains {
		delete(m.ssoMem.domains, d)
	}
	m.appendLocked(ev)
	return nil
}

func (m *Memory) SSOConnectionForDomain(_ context.Context, domain string) (SSOConnection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.ssoMem.domains[domain]
	if !ok {
		return SSOConnection{}, fmt.Errorf("sso connection for domain: %w", ErrNotFound)
	}
	return cloneSSO(m.ssoMem.conns[id]), nil
}

func (m *Memory) ProvisionSSOUser(_ context.Context, u User, ms Membership, ev Event) error {
	skeleton, err := emailSkeleton(u.Email)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ms.UserID != u.ID {
		return fmt.Errorf("provision sso user: the membership is another user's")
	}
	if _, ok := m.companies[ms.CompanyID]; !ok {
		return fmt.Errorf("provision sso user: company: %w", ErrNotFound)
	}
	_, idTaken := m.users[u.ID]
	_, emailTaken := m.emails[u.Email]
	_, lookAlike := m.skeletons[skeleton]
	if idTaken || emailTaken || lookAlike {
		return fmt.Errorf("provision sso user: %w", ErrConflict)
	}
	u.CreatedAt, u.PasswordChangedAt = micro(u.CreatedAt), micro(u.PasswordChangedAt)
	m.users[u.ID] = u
	m.emails[u.Email] = u.ID
	m.skeletons[skeleton] = u.ID
	ms.Roles = slices.Clone(ms.Roles)
	ms.CreatedAt = micro(ms.CreatedAt)
	m.memberships[u.ID] = map[string]Membership{ms.CompanyID: ms}
	m.appendLocked(ev)
	return nil
}
