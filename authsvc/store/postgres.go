package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store on a pgx pool (the erp app's). Each method is one
// statement where the operation allows, so that compound steps (rotating a
// refresh token, revoking a family) are atomic without a transaction's round
// trips. The schema comes from Migrate.
type Postgres struct {
	pool *pgxpool.Pool
}

// NewPostgres returns the store on pool. It does no I/O.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

// errNotFound wraps ErrNotFound with op; pgx.ErrNoRows and an id that is not
// a UUID (a row that cannot exist) are both "not found".
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w", op, ErrConflict)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w", op, ErrNotFound)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func validUUID(ids ...string) bool {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return false
		}
	}
	return true
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micro(t)
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func (p *Postgres) CreateCompany(ctx context.Context, c Company) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO companies (id, name, plan, created_at) VALUES ($1, $2, $3, $4)`,
		c.ID, c.Name, c.Plan, micro(c.CreatedAt))
	return wrap("create company", err)
}

func (p *Postgres) GetCompany(ctx context.Context, id string) (Company, error) {
	var c Company
	err := p.pool.QueryRow(ctx, `SELECT id, name, plan, created_at FROM companies WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.Plan, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, wrap("get company", err)
}

func (p *Postgres) CreateUser(ctx context.Context, u User) error {
	if !validUUID(u.ID) {
		return fmt.Errorf("create user: invalid id")
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, platform_admin, disabled, password_changed_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.Name, u.PasswordHash, u.PlatformAdmin, u.Disabled, micro(u.PasswordChangedAt), micro(u.CreatedAt))
	return wrap("create user", err)
}

const userColumns = `id::text, email, name, password_hash, platform_admin, disabled, password_changed_at, created_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.PlatformAdmin, &u.Disabled, &u.PasswordChangedAt, &u.CreatedAt)
	u.PasswordChangedAt, u.CreatedAt = u.PasswordChangedAt.UTC(), u.CreatedAt.UTC()
	return u, err
}

func (p *Postgres) GetUser(ctx context.Context, id string) (User, error) {
	if !validUUID(id) {
		return User{}, fmt.Errorf("get user: %w", ErrNotFound)
	}
	u, err := scanUser(p.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, wrap("get user", err)
}

func (p *Postgres) GetUserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(p.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	return u, wrap("get user by email", err)
}

// revokeUserSQL revokes every active session of user $1 at $2 with reason $3.
const revokeUserSQL = `UPDATE sessions SET revoked_at = $2, revoke_reason = $3
	WHERE user_id = $1 AND revoked_at IS NULL RETURNING id::text`

func (p *Postgres) SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("set password: %w", ErrNotFound)
	}
	var ids []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1`, userID, hash, micro(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		rows, err := tx.Query(ctx, revokeUserSQL, userID, micro(now), "password_changed")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return ids, wrap("set password", err)
}

func (p *Postgres) SetUserDisabled(ctx context.Context, userID string, disabled bool, now time.Time) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("set user disabled: %w", ErrNotFound)
	}
	var ids []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $2 WHERE id = $1`, userID, disabled)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if !disabled {
			return nil
		}
		rows, err := tx.Query(ctx, revokeUserSQL, userID, micro(now), "user_disabled")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return ids, wrap("set user disabled", err)
}

func (p *Postgres) PutMembership(ctx context.Context, m Membership) error {
	if !validUUID(m.UserID) {
		return fmt.Errorf("put membership: %w", ErrNotFound)
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO memberships (user_id, company_id, roles, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, company_id) DO UPDATE SET roles = EXCLUDED.roles`,
		m.UserID, m.CompanyID, m.Roles, micro(m.CreatedAt))
	return wrap("put membership", err)
}

func (p *Postgres) DeleteMembership(ctx context.Context, userID, companyID string) error {
	if !validUUID(userID) {
		return fmt.Errorf("delete membership: %w", ErrNotFound)
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND company_id = $2`, userID, companyID)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete membership", err)
}

func (p *Postgres) GetAccess(ctx context.Context, userID, companyID string) (Access, error) {
	if !validUUID(userID) {
		return Access{}, fmt.Errorf("get access: %w", ErrNotFound)
	}
	a := Access{UserID: userID}
	err := p.pool.QueryRow(ctx, `SELECT u.disabled, c.id, c.name, c.plan, c.created_at, m.roles
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN companies c ON c.id = m.company_id
		WHERE m.user_id = $1 AND m.company_id = $2`, userID, companyID).
		Scan(&a.UserDisabled, &a.Company.ID, &a.Company.Name, &a.Company.Plan, &a.Company.CreatedAt, &a.Roles)
	a.Company.CreatedAt = a.Company.CreatedAt.UTC()
	return a, wrap("get access", err)
}

func (p *Postgres) ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error) {
	out := []CompanyMembership{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT c.id, c.name, c.plan, c.created_at, m.roles
		FROM memberships m JOIN companies c ON c.id = m.company_id WHERE m.user_id = $1 ORDER BY c.id`, userID)
	if err != nil {
		return nil, wrap("list memberships", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cm CompanyMembership
		if err := rows.Scan(&cm.Company.ID, &cm.Company.Name, &cm.Company.Plan, &cm.Company.CreatedAt, &cm.Roles); err != nil {
			return nil, wrap("list memberships", err)
		}
		cm.Company.CreatedAt = cm.Company.CreatedAt.UTC()
		out = append(out, cm)
	}
	return out, wrap("list memberships", rows.Err())
}

func (p *Postgres) CreateSession(ctx context.Context, s Session, rt RefreshToken) error {
	if !validUUID(s.ID, s.UserID) {
		return fmt.Errorf("create session: invalid id")
	}
	_, err := p.pool.Exec(ctx, `WITH s AS (
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
	u.disabled, m.roles IS NOT NULL, COALESCE(c.id, ''), COALESCE(c.name, ''), COALESCE(c.plan, ''), COALESCE(c.created_at, 'epoch'), COALESCE(m.roles, '{}')
FROM ses
JOIN users u ON u.id = ses.user_id
LEFT JOIN memberships m ON m.user_id = ses.user_id AND m.company_id = ses.company_id
LEFT JOIN companies c ON c.id = m.company_id`

func (p *Postgres) RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, use Use) (RefreshResult, error) {
	const op = "rotate refresh token"
	var r RefreshResult
	s, err := scanSession(p.pool.QueryRow(ctx, rotateSQL, old, next.Hash, micro(use.Now), use.IP, use.UserAgent, micro(next.ExpiresAt)),
		&r.Access.UserDisabled, &r.Member, &r.Access.Company.ID, &r.Access.Company.Name, &r.Access.Company.Plan, &r.Access.Company.CreatedAt, &r.Access.Roles)
	if err == nil {
		r.Session = s
		r.Access.UserID = s.UserID
		r.Access.Company.CreatedAt = r.Access.Company.CreatedAt.UTC()
		if !r.Member {
			r.Access = Access{UserID: s.UserID, UserDisabled: r.Access.UserDisabled}
		}
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return RefreshResult{}, wrap(op, err)
	}
	// Nothing rotated: find out why.
	var used bool
	var sessionID string
	err = p.pool.QueryRow(ctx, `SELECT t.used_at IS NOT NULL, t.session_id::text FROM refresh_tokens t WHERE t.hash = $1`, old).
		Scan(&used, &sessionID)
	if err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	if !used {
		return RefreshResult{}, fmt.Errorf("%s: %w", op, ErrSessionInactive)
	}
	// Reuse: revoke the family (a no-op if it already is) and report it.
	s, err = scanSession(p.pool.QueryRow(ctx, `UPDATE sessions SET
			revoked_at = COALESCE(revoked_at, $2),
			revoke_reason = CASE WHEN revoked_at IS NULL THEN 'refresh_reuse' ELSE revoke_reason END
		WHERE id = $1 RETURNING `+sessionColumns, sessionID, micro(use.Now)))
	if err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	return RefreshResult{Session: s}, fmt.Errorf("%s: %w", op, ErrRefreshReused)
}

func (p *Postgres) SwitchCompany(ctx context.Context, userID, sessionID, companyID string, next RefreshToken, use Use) (Session, error) {
	if !validUUID(userID, sessionID) {
		return Session{}, fmt.Errorf("switch company: %w", ErrNotFound)
	}
	s, err := scanSession(p.pool.QueryRow(ctx, `WITH ses AS (
			UPDATE sessions s SET company_id = $3, last_used_at = $4, ip = $5, user_agent = $6
			WHERE s.id = $2 AND s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $4
				AND EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = $1 AND m.company_id = $3)
			RETURNING s.*
		), consumed AS (
			UPDATE refresh_tokens t SET used_at = $4 FROM ses WHERE t.session_id = ses.id AND t.used_at IS NULL
		), ins AS (
			INSERT INTO refresh_tokens (hash, session_id, expires_at)
			SELECT $7, ses.id, LEAST($8::timestamptz, ses.expires_at) FROM ses
		)
		SELECT `+sessionColumns+` FROM ses`,
		userID, sessionID, companyID, micro(use.Now), use.IP, use.UserAgent, next.Hash, micro(next.ExpiresAt)))
	return s, wrap("switch company", err)
}

func (p *Postgres) GetSession(ctx context.Context, userID, sessionID string) (Session, error) {
	if !validUUID(userID, sessionID) {
		return Session{}, fmt.Errorf("get session: %w", ErrNotFound)
	}
	s, err := scanSession(p.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND user_id = $2`, sessionID, userID))
	return s, wrap("get session", err)
}

func (p *Postgres) ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error) {
	out := []Session{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY last_used_at DESC, id`, userID, micro(now))
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	defer rows.Close()
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, wrap("list sessions", err)
		}
		out = append(out, s)
	}
	return out, wrap("list sessions", rows.Err())
}

func (p *Postgres) RevokeSession(ctx context.Context, userID, sessionID string, now time.Time, reason string) error {
	if !validUUID(userID, sessionID) {
		return fmt.Errorf("revoke session: %w", ErrNotFound)
	}
	tag, err := p.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $3, revoke_reason = $4
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, sessionID, userID, micro(now), reason)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("revoke session", err)
}

func (p *Postgres) RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string) ([]string, error) {
	if !validUUID(userID) {
		return []string{}, nil
	}
	rows, err := p.pool.Query(ctx, revokeUserSQL+` `, userID, micro(now), reason)
	if err != nil {
		return nil, wrap("revoke user sessions", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if ids == nil {
		ids = []string{}
	}
	return ids, wrap("revoke user sessions", err)
}

func (p *Postgres) CreateAPIKey(ctx context.Context, k APIKey) error {
	if !validUUID(k.ID) {
		return fmt.Errorf("create api key: invalid id")
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO api_keys (id, company_id, name, prefix, secret_hash, scope, plan, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.CompanyID, k.Name, k.Prefix, k.SecretHash, k.Scope, k.Plan, k.CreatedBy, micro(k.CreatedAt), nullTime(k.ExpiresAt))
	return wrap("create api key", err)
}

const apiKeyColumns = `id::text, company_id, name, prefix, secret_hash, prev_secret_hash, prev_expires_at, scope, plan, created_by,
	created_at, expires_at, revoked_at, last_used_at, use_count`

func scanAPIKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	var prevExp, exp, rev, last *time.Time
	err := row.Scan(&k.ID, &k.CompanyID, &k.Name, &k.Prefix, &k.SecretHash, &k.PrevSecretHash, &prevExp, &k.Scope, &k.Plan, &k.CreatedBy,
		&k.CreatedAt, &exp, &rev, &last, &k.UseCount)
	k.CreatedAt = k.CreatedAt.UTC()
	k.PrevExpiresAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromNull(prevExp), fromNull(exp), fromNull(rev), fromNull(last)
	return k, err
}

func (p *Postgres) ListAPIKeys(ctx context.Context, companyID string) ([]APIKey, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE company_id = $1 ORDER BY created_at, id`, companyID)
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, wrap("list api keys", err)
		}
		out = append(out, k)
	}
	return out, wrap("list api keys", rows.Err())
}

func (p *Postgres) GetAPIKey(ctx context.Context, companyID, id string) (APIKey, error) {
	if !validUUID(id) {
		return APIKey{}, fmt.Errorf("get api key: %w", ErrNotFound)
	}
	k, err := scanAPIKey(p.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1 AND company_id = $2`, id, companyID))
	return k, wrap("get api key", err)
}

func (p *Postgres) RotateAPIKey(ctx context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time) (APIKey, error) {
	if !validUUID(id) {
		return APIKey{}, fmt.Errorf("rotate api key: %w", ErrNotFound)
	}
	k, err := scanAPIKey(p.pool.QueryRow(ctx, `UPDATE api_keys SET prev_secret_hash = secret_hash, prev_expires_at = $3, secret_hash = $4
		WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL RETURNING `+apiKeyColumns, id, companyID, micro(graceUntil), newHash))
	return k, wrap("rotate api key", err)
}

func (p *Postgres) RevokeAPIKey(ctx context.Context, companyID, id string, now time.Time) error {
	if !validUUID(id) {
		return fmt.Errorf("revoke api key: %w", ErrNotFound)
	}
	tag, err := p.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL`,
		id, companyID, micro(now))
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("revoke api key", err)
}

func (p *Postgres) FindAPIKey(ctx context.Context, prefix string) (APIKey, error) {
	k, err := scanAPIKey(p.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`, prefix))
	return k, wrap("find api key", err)
}

func (p *Postgres) RecordAPIKeyUses(ctx context.Context, uses []APIKeyUse) error {
	if len(uses) == 0 {
		return nil
	}
	ids := make([]string, 0, len(uses))
	counts := make([]int64, 0, len(uses))
	lasts := make([]time.Time, 0, len(uses))
	for _, u := range uses {
		if !validUUID(u.ID) {
			continue
		}
		ids, counts, lasts = append(ids, u.ID), append(counts, u.Count), append(lasts, micro(u.LastUsed))
	}
	_, err := p.pool.Exec(ctx, `UPDATE api_keys k SET use_count = k.use_count + u.n,
			last_used_at = GREATEST(COALESCE(k.last_used_at, u.t), u.t)
		FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS u(id, n, t) WHERE k.id = u.id`, ids, counts, lasts)
	return wrap("record api key uses", err)
}

func (p *Postgres) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := p.pool.Query(ctx, `SELECT kid, alg, public_key, sealed_private, created_at, activates_at FROM signing_keys
		ORDER BY activates_at, kid`)
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	defer rows.Close()
	out := []SigningKey{}
	for rows.Next() {
		var k SigningKey
		if err := rows.Scan(&k.KID, &k.Alg, &k.PublicKey, &k.SealedPrivate, &k.CreatedAt, &k.ActivatesAt); err != nil {
			return nil, wrap("list signing keys", err)
		}
		k.CreatedAt, k.ActivatesAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC()
		out = append(out, k)
	}
	return out, wrap("list signing keys", rows.Err())
}

func (p *Postgres) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO signing_keys (kid, alg, public_key, sealed_private, created_at, activates_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.KID, k.Alg, k.PublicKey, k.SealedPrivate, micro(k.CreatedAt), micro(k.ActivatesAt))
	return wrap("add signing key", err)
}

func (p *Postgres) DeleteSigningKey(ctx context.Context, kid string) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM signing_keys WHERE kid = $1`, kid)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete signing key", err)
}

var _ Store = (*Postgres)(nil)
