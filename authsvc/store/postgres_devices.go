package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const deviceColumns = `id::text, user_id::text, token_hash, name, ip, created_at, last_used_at, expires_at, revoked_at, revoke_reason`

func scanDevice(row pgx.Row) (TrustedDevice, error) {
	var d TrustedDevice
	var revoked *time.Time
	err := row.Scan(&d.ID, &d.UserID, &d.TokenHash, &d.Name, &d.IP, &d.CreatedAt, &d.LastUsedAt, &d.ExpiresAt, &revoked, &d.RevokeReason)
	d.CreatedAt, d.LastUsedAt, d.ExpiresAt = d.CreatedAt.UTC(), d.LastUsedAt.UTC(), d.ExpiresAt.UTC()
	if revoked != nil {
		d.RevokedAt = revoked.UTC()
	}
	return d, err
}

func (p *Postgres) CreateTrustedDevice(ctx context.Context, d TrustedDevice, ev Event) error {
	if !validUUID(d.ID) {
		return fmt.Errorf("create trusted device: the id is not a UUID")
	}
	if !validUUID(d.UserID) {
		return fmt.Errorf("create trusted device: user: %w", ErrNotFound)
	}
	return wrap("create trusted device", p.execAudited(ctx, scope{}, ev, `INSERT INTO trusted_devices (id, user_id, token_hash, name, ip, created_at,
		last_used_at, expires_at, revoked_at, revoke_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		d.ID, d.UserID, d.TokenHash, d.Name, d.IP, micro(d.CreatedAt), micro(d.LastUsedAt), micro(d.ExpiresAt), nullTime(d.RevokedAt), d.RevokeReason))
}

func (p *Postgres) TrustedDeviceByHash(ctx context.Context, hash []byte) (TrustedDevice, error) {
	d, err := scanDevice(p.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM trusted_devices WHERE token_hash = $1`, hash))
	return d, wrap("trusted device", err)
}

func (p *Postgres) TouchTrustedDevice(ctx context.Context, userID, id string, at time.Time) error {
	if !validUUID(userID, id) {
		return fmt.Errorf("touch trusted device: %w", ErrNotFound)
	}
	return wrap("touch trusted device", affected(p.pool.Exec(ctx,
		`UPDATE trusted_devices SET last_used_at = GREATEST(last_used_at, $3) WHERE id = $1 AND user_id = $2`, id, userID, micro(at))))
}

func (p *Postgres) ListTrustedDevices(ctx context.Context, userID string, now time.Time) ([]TrustedDevice, error) {
	out := []TrustedDevice{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT `+deviceColumns+` FROM trusted_devices
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY last_used_at DESC, id`, userID, micro(now))
	if err != nil {
		return nil, wrap("list trusted devices", err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, wrap("list trusted devices", err)
		}
		out = append(out, d)
	}
	return out, wrap("list trusted devices", rows.Err())
}

func (p *Postgres) RevokeTrustedDevice(ctx context.Context, userID, id, reason string, now time.Time, ev Event) error {
	if !validUUID(userID, id) {
		return fmt.Errorf("revoke trusted device: %w", ErrNotFound)
	}
	return wrap("revoke trusted device", p.execAudited(ctx, scope{}, ev, `UPDATE trusted_devices SET revoked_at = $3, revoke_reason = $4
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3`, id, userID, micro(now), reason))
}

// revokeDevices revokes every unrevoked trusted device of the user, in the
// transaction (a password change, a disabled user).
func (t *tx) revokeDevices(userID string, now time.Time, reason string) error {
	_, err := t.Exec(`UPDATE trusted_devices SET revoked_at = $2, revoke_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL`,
		userID, micro(now), reason)
	return err
}

func (p *Postgres) RecordLogin(ctx context.Context, tr LoginTrace, keep int) error {
	if !validUUID(tr.UserID) {
		return fmt.Errorf("record login: user: %w", ErrNotFound)
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO login_history (user_id, fingerprint, network, at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, fingerprint, network) DO UPDATE SET at = GREATEST(login_history.at, EXCLUDED.at)`,
		tr.UserID, tr.Fingerprint, tr.Network, micro(tr.At))
	if keep > 0 {
		b.Queue(`DELETE FROM login_history h WHERE h.user_id = $1 AND (h.fingerprint, h.network) NOT IN (
			SELECT fingerprint, network FROM login_history WHERE user_id = $1 ORDER BY at DESC, fingerprint, network LIMIT $2)`, tr.UserID, keep)
	}
	return wrap("record login", p.inTx(ctx, txSpec{first: b}, func(t *tx) error {
		_, err := t.Result()
		return err
	}))
}

func (p *Postgres) RecentLogins(ctx context.Context, userID string, since time.Time) ([]LoginTrace, error) {
	out := []LoginTrace{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT user_id::text, fingerprint, network, at FROM login_history
		WHERE user_id = $1 AND at >= $2 ORDER BY at DESC, fingerprint, network`, userID, micro(since))
	if err != nil {
		return nil, wrap("recent logins", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tr LoginTrace
		if err := rows.Scan(&tr.UserID, &tr.Fingerprint, &tr.Network, &tr.At); err != nil {
			return nil, wrap("recent logins", err)
		}
		tr.At = tr.At.UTC()
		out = append(out, tr)
	}
	return out, wrap("recent logins", rows.Err())
}
