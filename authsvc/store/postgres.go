package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store on a pgx pool (the erp app's). Each method is one
// statement where the operation allows, so that compound steps (rotating a
// refresh token, revoking a family) are atomic without a transaction's round
// trips; the audited writes of the hot paths are pipelined (see
// postgres_pipeline.go). The schema comes from Migrate.
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

// inTx runs fn and appends ev to the audit trail in one transaction.
func (p *Postgres) inTx(ctx context.Context, ev Event, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return appendAudit(ctx, tx, ev)
	})
}

// auditStripes is the number of hash chains the trail is kept in (see
// migration 0002): appends to different stripes do not wait for each other.
const auditStripes = 8

// auditStripe picks an event's chain: the events about one subject (a
// session, a key, a user) stay in one chain, in order.
func auditStripe(ev Event) int64 {
	key := ev.SubjectID
	if key == "" {
		key = ev.ActorID
	}
	if key == "" {
		key = ev.RequestID + ev.IP
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum32() % auditStripes)
}

// appendAudit appends ev after the head of its chain, which it locks: the
// appends of concurrent transactions to one chain are ordered by that lock,
// and a transaction that rolls back leaves neither its record nor a gap.
func appendAudit(ctx context.Context, tx pgx.Tx, ev Event) error {
	head := auditHead{stripe: auditStripe(ev)}
	if err := head.scan(tx.QueryRow(ctx, lockHeadSQL, head.stripe)); err != nil {
		return err
	}
	e := ev.seal(head.seq+auditStripes, head.hash)
	_, err := tx.Exec(ctx, appendSQL,
		e.Seq, e.Time, e.Type, e.ActorID, e.CompanyID, e.SubjectID, e.IP, e.UserAgent, e.RequestID, e.Details, e.PrevHash, e.Hash, head.stripe)
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	return nil
}

func (p *Postgres) CreateCompany(ctx context.Context, c Company, ev Event) error {
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO companies (id, name, plan, disabled, created_at) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.Name, c.Plan, c.Disabled, micro(c.CreatedAt))
		return err
	})
	return wrap("create company", err)
}

const companyColumns = `id, name, plan, disabled, created_at`

func scanCompany(row pgx.Row) (Company, error) {
	var c Company
	err := row.Scan(&c.ID, &c.Name, &c.Plan, &c.Disabled, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

func (p *Postgres) GetCompany(ctx context.Context, id string) (Company, error) {
	c, err := scanCompany(p.pool.QueryRow(ctx, `SELECT `+companyColumns+` FROM companies WHERE id = $1`, id))
	return c, wrap("get company", err)
}

func (p *Postgres) UpdateCompany(ctx context.Context, id string, upd CompanyUpdate, now time.Time, ev Event) (Company, []string, error) {
	var c Company
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		var err error
		c, err = scanCompany(tx.QueryRow(ctx, `UPDATE companies SET name = COALESCE($2, name), plan = COALESCE($3, plan),
			disabled = COALESCE($4, disabled) WHERE id = $1 RETURNING `+companyColumns, id, upd.Name, upd.Plan, upd.Disabled))
		if err != nil || !c.Disabled {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = 'company_disabled'
			WHERE company_id = $1 AND revoked_at IS NULL RETURNING id::text`, id, micro(now))
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return c, ids, wrap("update company", err)
}

func (p *Postgres) ListCompanies(ctx context.Context, pg Page) ([]Company, int64, error) {
	return listPage(ctx, p, "list companies", `companies`, companyColumns, "id", pg, scanCompany)
}

// listPage reads one page of a whole table in order, with the table's total.
func listPage[T any](ctx context.Context, p *Postgres, op, table, columns, order string, pg Page, scan func(pgx.Row) (T, error)) ([]T, int64, error) {
	var total int64
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&total); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := p.pool.Query(ctx, `SELECT `+columns+` FROM `+table+` ORDER BY `+order+` LIMIT $1 OFFSET $2`, pg.Limit, pg.Offset)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if out == nil {
		out = []T{}
	}
	return out, total, wrap(op, err)
}

func (p *Postgres) CreateUser(ctx context.Context, u User, ev Event) error {
	if !validUUID(u.ID) {
		return fmt.Errorf("create user: invalid id")
	}
	skeleton, err := emailSkeleton(u.Email)
	if err != nil {
		return err
	}
	// The unique indexes on email and email_skeleton decide between
	// parallel creations of look-alikes: one commits, the others conflict.
	err = p.inTx(ctx, ev, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, email, email_skeleton, name, password_hash, platform_admin, disabled, password_changed_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			u.ID, u.Email, skeleton, u.Name, u.PasswordHash, u.PlatformAdmin, u.Disabled, micro(u.PasswordChangedAt), micro(u.CreatedAt))
		return err
	})
	return wrap("create user", err)
}

func (p *Postgres) ListUsers(ctx context.Context, pg Page) ([]User, int64, error) {
	return listPage(ctx, p, "list users", `users`, userColumns, "email", pg, scanUser)
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

func (p *Postgres) SetPasswordHash(ctx context.Context, userID, hash, keepSession string, now time.Time, ev Event) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("set password: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1`, userID, hash, micro(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		rows, err := tx.Query(ctx, `UPDATE sessions SET revoked_at = $2, revoke_reason = 'password_changed'
			WHERE user_id = $1 AND revoked_at IS NULL AND id::text <> $3 RETURNING id::text`, userID, micro(now), keepSession)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return ids, wrap("set password", err)
}

func (p *Postgres) ReplacePasswordHash(ctx context.Context, userID, old, next string) (bool, error) {
	if !validUUID(userID) {
		return false, fmt.Errorf("replace password hash: %w", ErrNotFound)
	}
	// A compare-and-set: under a concurrent change the UPDATE waits for the
	// row and re-checks the old hash (READ COMMITTED).
	tag, err := p.pool.Exec(ctx, `UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`, userID, old, next)
	if err != nil {
		return false, wrap("replace password hash", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var exists bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&exists); err != nil {
		return false, wrap("replace password hash", err)
	}
	if !exists {
		return false, fmt.Errorf("replace password hash: %w", ErrNotFound)
	}
	return false, nil
}

func (p *Postgres) UpdateUser(ctx context.Context, userID string, upd UserUpdate, now time.Time, ev Event) (User, []string, error) {
	if !validUUID(userID) {
		return User{}, nil, fmt.Errorf("update user: %w", ErrNotFound)
	}
	var u User
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `UPDATE users SET name = COALESCE($2, name), disabled = COALESCE($3, disabled),
			platform_admin = COALESCE($4, platform_admin) WHERE id = $1 RETURNING `+userColumns, userID, upd.Name, upd.Disabled, upd.PlatformAdmin))
		if err != nil || upd.Disabled == nil || !*upd.Disabled {
			return err
		}
		rows, err := tx.Query(ctx, revokeUserSQL, userID, micro(now), "user_disabled")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return u, ids, wrap("update user", err)
}

// revokeMemberSQL revokes user $1's active sessions bound to company $2.
const revokeMemberSQL = `UPDATE sessions SET revoked_at = $3, revoke_reason = $4
	WHERE user_id = $1 AND company_id = $2 AND revoked_at IS NULL RETURNING id::text`

func (p *Postgres) PutMembership(ctx context.Context, m Membership, now time.Time, ev Event) ([]string, error) {
	if !validUUID(m.UserID) {
		return nil, fmt.Errorf("put membership: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		var old []string
		err := tx.QueryRow(ctx, `SELECT roles FROM memberships WHERE user_id = $1 AND company_id = $2 FOR UPDATE`, m.UserID, m.CompanyID).Scan(&old)
		existed := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (user_id, company_id, roles, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, company_id) DO UPDATE SET roles = EXCLUDED.roles`,
			m.UserID, m.CompanyID, m.Roles, micro(m.CreatedAt)); err != nil {
			return err
		}
		if !existed || sameRoles(old, m.Roles) {
			return nil
		}
		rows, err := tx.Query(ctx, revokeMemberSQL, m.UserID, m.CompanyID, micro(now), "roles_changed")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return ids, wrap("put membership", err)
}

func (p *Postgres) DeleteMembership(ctx context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("delete membership: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND company_id = $2`, userID, companyID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		rows, err := tx.Query(ctx, revokeMemberSQL, userID, companyID, micro(now), "membership_removed")
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return ids, wrap("delete membership", err)
}

func (p *Postgres) FindMemberships(ctx context.Context, f MembershipFilter, pg Page) ([]MembershipView, int64, error) {
	if f.UserID != "" && !validUUID(f.UserID) {
		return []MembershipView{}, 0, nil
	}
	const where = ` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE ($1 = '' OR m.company_id = $1) AND ($2 = '' OR m.user_id::text = $2)`
	var total int64
	if err := p.pool.QueryRow(ctx, `SELECT count(*)`+where, f.CompanyID, f.UserID).Scan(&total); err != nil {
		return nil, 0, wrap("find memberships", err)
	}
	rows, err := p.pool.Query(ctx, `SELECT m.user_id::text, m.company_id, m.roles, m.created_at, u.email`+where+`
		ORDER BY m.company_id, u.email LIMIT $3 OFFSET $4`, f.CompanyID, f.UserID, pg.Limit, pg.Offset)
	if err != nil {
		return nil, 0, wrap("find memberships", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MembershipView, error) {
		var v MembershipView
		err := r.Scan(&v.UserID, &v.CompanyID, &v.Roles, &v.CreatedAt, &v.Email)
		v.CreatedAt = v.CreatedAt.UTC()
		return v, err
	})
	if out == nil {
		out = []MembershipView{}
	}
	return out, total, wrap("find memberships", err)
}

func (p *Postgres) GetAccess(ctx context.Context, userID, companyID string) (Access, error) {
	if !validUUID(userID) {
		return Access{}, fmt.Errorf("get access: %w", ErrNotFound)
	}
	a := Access{UserID: userID}
	err := p.pool.QueryRow(ctx, `SELECT u.disabled, c.id, c.name, c.plan, c.disabled, c.created_at, m.roles
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN companies c ON c.id = m.company_id
		WHERE m.user_id = $1 AND m.company_id = $2`, userID, companyID).
		Scan(&a.UserDisabled, &a.Company.ID, &a.Company.Name, &a.Company.Plan, &a.Company.Disabled, &a.Company.CreatedAt, &a.Roles)
	a.Company.CreatedAt = a.Company.CreatedAt.UTC()
	return a, wrap("get access", err)
}

func (p *Postgres) ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error) {
	out := []CompanyMembership{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT c.id, c.name, c.plan, c.disabled, c.created_at, m.roles
		FROM memberships m JOIN companies c ON c.id = m.company_id WHERE m.user_id = $1 ORDER BY c.id`, userID)
	if err != nil {
		return nil, wrap("list memberships", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cm CompanyMembership
		if err := rows.Scan(&cm.Company.ID, &cm.Company.Name, &cm.Company.Plan, &cm.Company.Disabled, &cm.Company.CreatedAt, &cm.Roles); err != nil {
			return nil, wrap("list memberships", err)
		}
		cm.Company.CreatedAt = cm.Company.CreatedAt.UTC()
		out = append(out, cm)
	}
	return out, wrap("list memberships", rows.Err())
}

func (p *Postgres) CreateSession(ctx context.Context, s Session, rt RefreshToken, ev Event) error {
	if !validUUID(s.ID, s.UserID) {
		return fmt.Errorf("create session: invalid id")
	}
	err := p.execAudited(ctx, ev, `WITH s AS (
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
	b := newTxBatch()
	b.Queue(rotateSQL, old, next.Hash, micro(use.Now), use.IP, use.UserAgent, micro(next.ExpiresAt))
	c, br, err := p.sendTx(ctx, b)
	if err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	defer endTx(ctx, c)
	var r RefreshResult
	s, err := scanSession(br.QueryRow(),
		&r.Access.UserDisabled, &r.Member, &r.Access.Company.ID, &r.Access.Company.Name, &r.Access.Company.Plan, &r.Access.Company.Disabled,
		&r.Access.Company.CreatedAt, &r.Access.Roles)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		r.Session = s
		r.Access.UserID = s.UserID
		r.Access.Company.CreatedAt = r.Access.Company.CreatedAt.UTC()
		if !r.Member {
			r.Access = Access{UserID: s.UserID, UserDisabled: r.Access.UserDisabled}
		}
		ev.ActorID, ev.CompanyID, ev.SubjectID = s.UserID, s.CompanyID, s.ID
		if err := lockAndCommitAudit(ctx, c, ev); err != nil {
			return RefreshResult{}, wrap(op, err)
		}
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return RefreshResult{}, wrap(op, err)
	}
	// Nothing rotated: find out why, in the same transaction.
	var used bool
	var sessionID string
	if err := c.QueryRow(ctx, `SELECT t.used_at IS NOT NULL, t.session_id::text FROM refresh_tokens t WHERE t.hash = $1`, old).
		Scan(&used, &sessionID); err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	if !used {
		return RefreshResult{}, fmt.Errorf("%s: %w", op, ErrSessionInactive)
	}
	// Reuse: revoke the family (a no-op if it already is), record it, and report it.
	s, err = scanSession(c.QueryRow(ctx, `UPDATE sessions SET
			revoked_at = COALESCE(revoked_at, $2),
			revoke_reason = CASE WHEN revoked_at IS NULL THEN 'refresh_reuse' ELSE revoke_reason END
		WHERE id = $1 RETURNING `+sessionColumns, sessionID, micro(use.Now)))
	if err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	ev.Type, ev.ActorID, ev.CompanyID, ev.SubjectID = EventRefreshReuse, s.UserID, s.CompanyID, s.ID
	if err := lockAndCommitAudit(ctx, c, ev); err != nil {
		return RefreshResult{}, wrap(op, err)
	}
	return RefreshResult{Session: s}, fmt.Errorf("%s: %w", op, ErrRefreshReused)
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
	head := auditHead{stripe: auditStripe(ev)}
	b := newTxBatch()
	b.Queue(switchSQL, userID, sessionID, companyID, micro(use.Now), use.IP, use.UserAgent, next.Hash, micro(next.ExpiresAt))
	b.Queue(lockHeadSQL, head.stripe)
	c, br, err := p.sendTx(ctx, b)
	if err != nil {
		return SwitchResult{}, wrap(op, err)
	}
	defer endTx(ctx, c)
	var r SwitchResult
	var switched bool
	a, s := &r.Access, &r.Session
	err = br.QueryRow().Scan(&a.UserDisabled, &r.PlatformAdmin, &r.Member, &a.Company.ID, &a.Company.Name,
		&a.Company.Plan, &a.Company.Disabled, &a.Company.CreatedAt, &a.Roles,
		&switched, &s.ID, &s.CompanyID, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &s.UserAgent, &s.IP, &s.MFA)
	if err == nil && switched {
		err = head.scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows): // no such user
		return SwitchResult{}, fmt.Errorf("%s: %w", op, ErrNoAccess)
	case err != nil:
		return SwitchResult{}, wrap(op, err)
	}
	a.UserID = userID
	if a.Company.ID == "" {
		a.Company = Company{}
	} else {
		a.Company.CreatedAt = a.Company.CreatedAt.UTC()
	}
	if !switched {
		r.Session = Session{}
		if a.Company.ID == "" || a.UserDisabled || a.Company.Disabled || (!r.Member && !r.PlatformAdmin) {
			return r, fmt.Errorf("%s: %w", op, ErrNoAccess)
		}
		return r, fmt.Errorf("%s: session: %w", op, ErrNotFound)
	}
	s.UserID = userID
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
	if err := commitAudit(ctx, c, ev, head); err != nil {
		return SwitchResult{}, wrap(op, err)
	}
	return r, nil
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

func (p *Postgres) RevokeSession(ctx context.Context, userID, sessionID string, now time.Time, reason string, ev Event) error {
	if !validUUID(userID, sessionID) {
		return fmt.Errorf("revoke session: %w", ErrNotFound)
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $3, revoke_reason = $4
			WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, sessionID, userID, micro(now), reason)
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
	return wrap("revoke session", err)
}

func (p *Postgres) RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string, ev Event) ([]string, error) {
	ids := []string{}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		if !validUUID(userID) {
			return nil
		}
		rows, err := tx.Query(ctx, revokeUserSQL, userID, micro(now), reason)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if ids == nil {
		ids = []string{}
	}
	return ids, wrap("revoke user sessions", err)
}

func (p *Postgres) CreateAPIKey(ctx context.Context, k APIKey, ev Event) error {
	if !validUUID(k.ID) {
		return fmt.Errorf("create api key: invalid id")
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, company_id, name, prefix, secret_hash, scope, plan, created_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			k.ID, k.CompanyID, k.Name, k.Prefix, k.SecretHash, k.Scope, k.Plan, k.CreatedBy, micro(k.CreatedAt), nullTime(k.ExpiresAt))
		return err
	})
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

func (p *Postgres) RotateAPIKey(ctx context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time, ev Event) (APIKey, error) {
	if !validUUID(id) {
		return APIKey{}, fmt.Errorf("rotate api key: %w", ErrNotFound)
	}
	var k APIKey
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		var err error
		k, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET prev_secret_hash = secret_hash, prev_expires_at = $3, secret_hash = $4
			WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL RETURNING `+apiKeyColumns, id, companyID, micro(graceUntil), newHash))
		return err
	})
	return k, wrap("rotate api key", err)
}

func (p *Postgres) RevokeAPIKey(ctx context.Context, companyID, id string, now time.Time, ev Event) error {
	if !validUUID(id) {
		return fmt.Errorf("revoke api key: %w", ErrNotFound)
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL`,
			id, companyID, micro(now))
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
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

// signingKeyTables maps each purpose to its table (never built from input).
var signingKeyTables = map[KeyPurpose]string{KeyAccess: "signing_keys", KeyAssertion: "assertion_keys"}

func signingKeyTable(op string, purpose KeyPurpose) (string, error) {
	t, ok := signingKeyTables[purpose]
	if !ok {
		return "", fmt.Errorf("%s: unknown purpose %q", op, purpose)
	}
	return t, nil
}

func (p *Postgres) ListSigningKeys(ctx context.Context, purpose KeyPurpose) ([]SigningKey, error) {
	table, err := signingKeyTable("list signing keys", purpose)
	if err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT kid, alg, public_key, sealed_private, created_at, activates_at FROM `+table+`
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

func (p *Postgres) AddSigningKey(ctx context.Context, purpose KeyPurpose, k SigningKey) error {
	table, err := signingKeyTable("add signing key", purpose)
	if err != nil {
		return err
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO `+table+` (kid, alg, public_key, sealed_private, created_at, activates_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.KID, k.Alg, k.PublicKey, k.SealedPrivate, micro(k.CreatedAt), micro(k.ActivatesAt))
	return wrap("add signing key", err)
}

func (p *Postgres) DeleteSigningKey(ctx context.Context, purpose KeyPurpose, kid string) error {
	table, err := signingKeyTable("delete signing key", purpose)
	if err != nil {
		return err
	}
	tag, err := p.pool.Exec(ctx, `DELETE FROM `+table+` WHERE kid = $1`, kid)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap("delete signing key", err)
}

var _ Store = (*Postgres)(nil)
