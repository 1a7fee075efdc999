package authsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/erpgate/erpgate/authsvc/store"
)

// Actions of the security monitor (internal/secmon) on accounts and
// sessions. The monitor judges auth events on the stream; these are what it
// may ask the auth service to do. Each is audited as a system change.

// LockAccount locks the user (the monitor's lock_account, rule names
// which): logins are refused as a disabled account's are, until an admin
// unlocks it with PATCH /api/v1/admin/users/{id} {"locked": false}. Sessions
// stay. A user already locked is not locked (or audited) again.
func (s *Service) LockAccount(ctx context.Context, userID, rule string) error {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("lock account: %w", err)
	}
	if u.Locked {
		return nil
	}
	locked := true
	ev := s.systemEvent(store.EventUserUpdated, userID, map[string]string{"locked": "true", "reason": "security." + rule})
	if _, _, err := s.store.UpdateUser(ctx, userID, store.UserUpdate{Locked: &locked}, s.clock.Now(), ev); err != nil {
		return fmt.Errorf("lock account: %w", err)
	}
	return nil
}

// RevokeFamily makes sure the session of a reused refresh token (its whole
// token family) is revoked: the refresh already revoked it in the same
// transaction as the reuse's audit record, so this normally finds it
// revoked and does nothing.
func (s *Service) RevokeFamily(ctx context.Context, userID, sessionID string) error {
	ev := s.systemEvent(store.EventSessionRevoked, sessionID, map[string]string{"reason": "refresh_reuse"})
	ev.ActorID = ""
	err := s.store.RevokeSession(ctx, userID, sessionID, s.clock.Now(), "refresh_reuse", ev)
	if errors.Is(err, store.ErrNotFound) {
		return nil // already revoked (or gone): the family is dead
	}
	if err != nil {
		return fmt.Errorf("revoke family: %w", err)
	}
	s.sessionsRevoked([]string{sessionID})
	return nil
}
