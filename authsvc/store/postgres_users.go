package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const userColumns = `id::text, email, name, password_hash, platform_admin, disabled, locked, password_changed_at, created_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.PlatformAdmin, &u.Disabled, &u.Locked, &u.PasswordChangedAt, &u.CreatedAt)
	u.PasswordChangedAt, u.CreatedAt = u.PasswordChangedAt.UTC(), u.CreatedAt.UTC()
	return u, err
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
	err = p.execAudited(ctx, scope{}, ev, `INSERT INTO users (id, email, email_skeleton, name, password_hash, platform_admin, disabled, password_changed_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Email, skeleton, u.Name, u.PasswordHash, u.PlatformAdmin, u.Disabled, micro(u.PasswordChangedAt), micro(u.CreatedAt))
	return wrap("create user", err)
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

func (p *Postgres) ListUsers(ctx context.Context, pg Page) ([]User, int64, error) {
	return listPage(ctx, p, scope{}, "list users", `users`, userColumns, "email", pg, scanUser)
}

func (p *Postgres) SetPasswordHash(ctx context.Context, userID, hash, keepSession string, now time.Time, ev Event) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("set password: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, txSpec{scope: userScope(userID), ev: &ev}, func(t *tx) error {
		if err := affected(t.Exec(`UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1`, userID, hash, micro(now))); err != nil {
			return err
		}
		var err error
		ids, err = t.revokeSessions(sessionScope{userID: userID, except: keepSession}, now, reasonPasswordChanged)
		if err != nil {
			return err
		}
		return t.revokeDevices(userID, now, DeviceRevokedPasswordChange)
	})
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
	err := p.inTx(ctx, txSpec{scope: userScope(userID), ev: &ev}, func(t *tx) error {
		var err error
		u, err = scanUser(t.QueryRow(`UPDATE users SET name = COALESCE($2, name), disabled = COALESCE($3, disabled),
			platform_admin = COALESCE($4, platform_admin), locked = COALESCE($5, locked) WHERE id = $1 RETURNING `+userColumns,
			userID, upd.Name, upd.Disabled, upd.PlatformAdmin, upd.Locked))
		if err != nil || upd.Disabled == nil || !*upd.Disabled {
			return err
		}
		ids, err = t.revokeSessions(sessionScope{userID: userID}, now, reasonUserDisabled)
		if err != nil {
			return err
		}
		return t.revokeDevices(userID, now, DeviceRevokedUserDisabled)
	})
	return u, ids, wrap("update user", err)
}
