package store

import (
	"context"
	"fmt"
	"time"
)

func (m *Memory) EraseUser(_ context.Context, userID, pseudonym string, now time.Time, key AuditKey, ev Event) (Erasure, error) {
	var out Erasure
	if key.IsZero() {
		return out, fmt.Errorf("erase user: %w", errNoAuditKey)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return out, fmt.Errorf("erase user: %w", ErrNotFound)
	}
	out.RevokedSessions = m.revokeLocked(sessionScope{userID: userID}, now, "erased")
	for id, s := range m.sessions {
		if s.UserID == userID {
			delete(m.sessions, id)
		}
	}
	for h, r := range m.refresh {
		if _, ok := m.sessions[r.sessionID]; !ok {
			delete(m.refresh, h)
		}
	}
	for id, k := range m.apiKeys {
		if k.CreatedBy == userID {
			k.CreatedBy = pseudonym
			m.apiKeys[id] = k
		}
	}
	delete(m.users, userID)
	delete(m.emails, u.Email)
	for sk, id := range m.skeletons {
		if id == userID {
			delete(m.skeletons, sk)
		}
	}
	delete(m.memberships, userID)
	delete(m.totp, userID)
	delete(m.recovery, userID)
	delete(m.factorMem.factors, userID)
	for id, c := range m.webauthnMem.creds {
		if c.UserID == userID {
			delete(m.webauthnMem.creds, id)
			delete(m.webauthnMem.byCred, string(c.CredentialID))
		}
	}
	for id, d := range m.deviceMem.devices {
		if d.UserID == userID {
			delete(m.deviceMem.devices, id)
			delete(m.deviceMem.byHash, string(d.TokenHash))
		}
	}
	delete(m.deviceMem.logins, userID)
	for i, e := range m.audit {
		if about(e, userID, u.Email) {
			m.audit[i] = e.Pseudonymise(userID, u.Email, pseudonym, key)
			out.AuditRecords++
		}
	}
	ev.Details = erasureDetails(ev.Details, out)
	m.appendLocked(ev)
	return out, nil
}
