package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func (p *Postgres) CreateSession(ctx context.Context, s Session, rt RefreshToken, ev Event) error {
	if !validUUID(s.ID, s.UserID) {
		return fmt.Errorf("create session: invalid id")
	}
	err := p.execAudited(ctx, companyScope(s.CompanyID), ev, `WITH s AS (
			INSERT INTO sessions (id, user_id, company_id, created_at, last_used_at, expires_at, user_agent, ip, mfa)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id)
		INSERT INTO refresh_tokens (hash, session_id, expires_at) SELECT $10, s.id, $11 FROM s`,
		s.ID, s.UserID, s.CompanyID, micro(s.CreatedAt), micro(s.LastUsedAt), micro(s.ExpiresAt), s.UserAgent, s.IP, s.MFA,
		rt.Hash, micro(rt.ExpiresAt))
	return wrap("create session", err)
}

const sessionColumns = `id::text, user_id::text, company_id, created_at, last_used_at, expires_at, revoked_at, revoke_reason, user_agent, ip, mfa`

func scanSession(row pgx.Row, extra ...any) (Session, error) {
	var s Session
	var revoked *time.Time
	dst := append([]any{&s.ID, &s.UserID, &s.CompanyID, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &revoked, &s.RevokeReason, &s.UserAgent, &s.IP, &s.MFA}, extra...)
	err := row.Scan(dst...)
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt, s.RevokedAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC(), fromNull(revoked)
	return s, err
}

// rotateSQL consumes token $1 (if unused, unexpired, of an active session),
// records the use on the session, stores token $2 in the family and returns
// the session with the user's access to its company — all in one statement.
// Parallel callers with one token serialise on its row lock; the later ones
// re-check used_at IS NULL, find it false and get no row.
const rotateSQL = `WITH tok AS (
	UPDATE refresh_tokens t SET used_at = $3
	FROM sessions s
	WHERE t.hash = $1 AND t.used_at IS NULL AND t.expires_at > $3
		AND s.id = t.session_id AND s.revoked_at IS NULL AND s.expires_at > $3
	RETURNING t.session_id
), ses AS (
	UPDATE sessions s SET last_used_at = $3, ip = $4, user_agent = $5
	FROM tok WHERE s.id = tok.session_id
	RETURNING s.*
), ins AS (
	INSERT INTO refresh_tokens (hash, session_id, expires_at)
	SELECT $2, ses.id, LEAST($6::timestamptz, ses.expires_at) FROM ses
)
SELECT ses.id::text, ses.user_id::text, ses.company_id, ses.created_at, ses.last_used_at, ses.expires_at, ses.revoked_at,
	ses.revoke_reason, ses.user_agent, ses.ip, ses.mfa,
	u.disabled, m.roles IS NOT NULL, COALESCE(c.id, ''), COALESCE(c.name, ''), COALESCE(c.plan, ''), COALESCE(c.disabled, false),
	COALESCE(c.created_at, 'epoch'), COALESCE(m.roles, '{}')
FROM ses
JOIN users u ON u.id = ses.user_id
LEFT JOIN memberships m ON m.user_id = ses.user_id AND m.company_id = ses.company_id
LEFT JOIN companies c ON c.id = m.company_id`

func (p *Postgres) RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, use Use, ev Event) (RefreshResult, error) {
	const op = "rotate refresh token"
	var r RefreshResult
	var reused bool
	first := &pgx.Batch{}
	first.Queue(rotateSQL, old, next.Hash, micro(use.Now), use.IP, use.UserAgent, micro(next.ExpiresAt))
	// The event's chain is the session's, known once the token is: the head
	// is locked after the change.
	err := p.inTx(ctx, txSpec{scope: refreshScope(old), first: first, ev: &ev}, func(t *tx) error {
		a := &r.Access
		s, err := scanSession(t.Row(), &a.UserDisabled, &r.Member, &a.Company.ID, &a.Company.Name, &a.Company.Plan,
			&a.Company.Disabled, &a.Company.CreatedAt, &a.Roles)
		if err == nil {
			r.Session = s
			a.UserID = s.UserID
			a.Company.CreatedAt = a.Company.CreatedAt.UTC()
			if !r.Member {
				r.Access = Access{UserID: s.UserID, UserDisabled: a.UserDisabled}
			}
			ev.ActorID, ev.CompanyID, ev.SubjectID = s.UserID, s.CompanyID, s.ID
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Nothing rotated: find out why, in the same transaction.
		var used bool
		var sessionID string
		if err := t.QueryRow(`SELECT t.used_at IS NOT NULL, t.session_id::text FROM refresh_tokens t WHERE t.hash = $1`, old).
			Scan(&used, &sessionID); err != nil {
			return err
		}
		if !used {
			return ErrSessionInactive
		}
		// Reuse: revoke the family (a no-op if it already is) and record it.
		s, err = scanSession(t.QueryRow(`UPDATE sessions SET
				revoked_at = COALESCE(revoked_at, $2),
				revoke_reason = CASE WHEN revoked_at IS NULL THEN $3 ELSE revoke_reason END
			WHERE id = $1 RETURNING `+sessionColumns, sessionID, micro(use.Now), reasonRefreshReuse))
		if err != nil {
			return err
		}
		ev.Type, ev.ActorID, ev.CompanyID, ev.SubjectID = EventRefreshReuse, s.UserID, s.CompanyID, s.ID
		r, reused = RefreshResult{Session: s}, true
		return nil
	})
	switch {
	case err != nil:
		return RefreshResult{}, wrap(op, err)
	case reused:
		return r, fmt.Errorf("%s: %w", op, ErrRefreshReused)
	}
	return r, nil
}

// switchSQL reads user $1's access to company $3 and, when it allows the
// switch, moves the user's active session $2 to the company, consumes the
// family's outstanding refresh tokens and stores token $7 — one statement,
// so the access returned is the one the switch was checked against. It
// returns one row whenever the user exists; the session columns are NULL
// when nothing was switched.
const switchSQL = `WITH acc AS (
	SELECT u.disabled AS user_disabled, u.platform_admin, m.roles,
		c.id AS company_id, c.name, c.plan, c.disabled AS company_disabled, c.created_at
	FROM users u
	LEFT JOIN companies c ON c.id = $3
	LEFT JOIN memberships m ON m.user_id = u.id AND m.company_id = c.id
	WHERE u.id = $1
), ses AS (
	UPDATE sessions s SET company_id = $3, last_used_at = $4, ip = $5, user_agent = $6
	FROM acc
	WHERE s.id = $2 AND s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $4
		AND acc.company_id IS NOT NULL AND NOT acc.user_disabled AND NOT acc.company_disabled
		AND (acc.roles IS NOT NULL OR acc.platform_admin)
	RETURNING s.*
), consumed AS (
	UPDATE refresh_tokens t SET used_at = $4 FROM ses WHERE t.session_id = ses.id AND t.used_at IS NULL
), ins AS (
	INSERT INTO refresh_tokens (hash, session_id, expires_at)
	SELECT $7, ses.id, LEAST($8::timestamptz, ses.expires_at) FROM ses
)
SELECT acc.user_disabled, acc.platform_admin, acc.roles IS NOT NULL, COALESCE(acc.company_id, ''), COALESCE(acc.name, ''),
	COALESCE(acc.plan, ''), COALESCE(acc.company_disabled, false), COALESCE(acc.created_at, 'epoch'), COALESCE(acc.roles, '{}'),
	ses.id IS NOT NULL, COALESCE(ses.id::text, ''), COALESCE(ses.company_id, ''), COALESCE(ses.created_at, 'epoch'),
	COALESCE(ses.last_used_at, 'epoch'), COALESCE(ses.expires_at, 'epoch'), COALESCE(ses.user_agent, ''), COALESCE(ses.ip, ''),
	COALESCE(ses.mfa, false)
FROM acc LEFT JOIN ses ON true`

func (p *Postgres) SwitchCompany(ctx context.Context, userID, sessionID, companyID string, next RefreshToken, use Use, ev Event) (SwitchResult, error) {
	const op = "switch company"
	if !validUUID(userID) {
		return SwitchResult{}, fmt.Errorf("%s: %w", op, ErrNoAccess)
	}
	if !validUUID(sessionID) {
		sessionID = uuid.Nil.String() // no such session; the access is still read
	}
	var r SwitchResult
	first := &pgx.Batch{}
	first.Queue(switchSQL, userID, sessionID, companyID, micro(use.Now), use.IP, use.UserAgent, next.Hash, micro(next.ExpiresAt))
	err := p.inTx(ctx, txSpec{scope: userCompanyScope(userID, companyID), first: first, ev: &ev, lockFirst: true}, func(t *tx) error {
		var switched bool
		a, s := &r.Access, &r.Session
		err := t.Row().Scan(&a.UserDisabled, &r.PlatformAdmin, &r.Member, &a.Company.ID, &a.Company.Name,
			&a.Company.Plan, &a.Company.Disabled, &a.Company.CreatedAt, &a.Roles,
			&switched, &s.ID, &s.CompanyID, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &s.UserAgent, &s.IP, &s.MFA)
		switch {
		case errors.Is(err, pgx.ErrNoRows): // no such user
			r = SwitchResult{}
			return ErrNoAccess
		case err != nil:
			r = SwitchResult{}
			return err
		}
		a.UserID = userID
		if a.Company.ID == "" {
			a.Company = Company{}
		} else {
			a.Company.CreatedAt = a.Company.CreatedAt.UTC()
		}
		if !switched { // nothing changed: roll back, record nothing
			r.Session = Session{}
			if a.Company.ID == "" || a.UserDisabled || a.Company.Disabled || (!r.Member && !r.PlatformAdmin) {
				return ErrNoAccess
			}
			return fmt.Errorf("session: %w", ErrNotFound)
		}
		s.UserID = userID
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrNoAccess) && !errors.Is(err, ErrNotFound) {
			r = SwitchResult{}
		}
		return r, wrap(op, err)
	}
	return r, nil
}

func (p *Postgres) GetSession(ctx context.Context, userID, sessionID string) (Session, error) {
	if !validUUID(userID, sessionID) {
		return Session{}, fmt.Errorf("get session: %w", ErrNotFound)
	}
	s, err := readRow(ctx, p, userScope(userID), func(r pgx.Row) (Session, error) { return scanSession(r) },
		`SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND user_id = $2`, sessionID, userID)
	return s, wrap("get session", err)
}

func (p *Postgres) ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	if !validUUID(userID) {
		return []Session{}, nil
	}
	out, err := readRows(ctx, p, userScope(userID), func(r pgx.Row) (Session, error) { return scanSession(r) }, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY last_used_at DESC, id`, userID, micro(now))
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	return out, nil
}

func (p *Postgres) RevokeSession(ctx context.Context, userID, sessionID string, now time.Time, reason string, ev Event) error {
	if !validUUID(userID, sessionID) {
		return fmt.Errorf("revoke session: %w", ErrNotFound)
	}
	err := p.execAudited(ctx, userScope(userID), ev, `UPDATE sessions SET revoked_at = $3, revoke_reason = $4
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, sessionID, userID, micro(now), reason)
	return wrap("revoke session", err)
}

func (p *Postgres) RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string, ev Event) ([]string, error) {
	ids := []string{}
	sc := scope{}
	if validUUID(userID) {
		sc = userScope(userID)
	}
	err := p.inTx(ctx, txSpec{scope: sc, ev: &ev}, func(t *tx) error {
		if !validUUID(userID) {
			return nil // no sessions; the event is still recorded
		}
		var err error
		ids, err = t.revokeSessions(sessionScope{userID: userID}, now, reason)
		return err
	})
	return ids, wrap("revoke user sessions", err)
}
