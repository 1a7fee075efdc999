package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func scanFactor(row pgx.Row, f *Factor) error {
	var confirmed *time.Time
	err := row.Scan(&f.UserID, &f.Kind, &f.SealedPhone, &f.PhoneMasked, &f.CreatedAt, &confirmed)
	f.CreatedAt, f.ConfirmedAt = f.CreatedAt.UTC(), fromNull(confirmed)
	return err
}

const factorColumns = `user_id, kind, sealed_phone, phone_masked, created_at, confirmed_at`

func (p *Postgres) PutPendingFactor(ctx context.Context, f Factor, ev Event) error {
	if !validUUID(f.UserID) {
		return fmt.Errorf("put pending factor: %w", ErrNotFound)
	}
	// Replaces a pending factor; a confirmed one stays (no row changes).
	err := p.execAudited(ctx, scope{}, ev, `INSERT INTO mfa_factors (user_id, kind, sealed_phone, phone_masked, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, kind) DO UPDATE SET sealed_phone = EXCLUDED.sealed_phone, phone_masked = EXCLUDED.phone_masked,
			created_at = EXCLUDED.created_at
		WHERE mfa_factors.confirmed_at IS NULL`, f.UserID, f.Kind, f.SealedPhone, f.PhoneMasked, micro(f.CreatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("put pending factor: %w", ErrConflict)
	}
	return wrap("put pending factor", err)
}

func (p *Postgres) GetFactor(ctx context.Context, userID, kind string) (Factor, error) {
	if !validUUID(userID) {
		return Factor{}, fmt.Errorf("get factor: %w", ErrNotFound)
	}
	var f Factor
	err := scanFactor(p.pool.QueryRow(ctx, `SELECT `+factorColumns+` FROM mfa_factors WHERE user_id = $1 AND kind = $2`, userID, kind), &f)
	return f, wrap("get factor", err)
}

func (p *Postgres) ListFactors(ctx context.Context, userID string) ([]Factor, error) {
	out := []Factor{}
	if !validUUID(userID) {
		return out, nil
	}
	rows, err := p.pool.Query(ctx, `SELECT `+factorColumns+` FROM mfa_factors WHERE user_id = $1 ORDER BY kind`, userID)
	if err != nil {
		return nil, wrap("list factors", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Factor
		if err := scanFactor(rows, &f); err != nil {
			return nil, wrap("list factors", err)
		}
		out = append(out, f)
	}
	return out, wrap("list factors", rows.Err())
}

func (p *Postgres) ConfirmFactor(ctx context.Context, userID, kind string, now time.Time, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("confirm factor: %w", ErrNotFound)
	}
	return wrap("confirm factor", p.execAudited(ctx, scope{}, ev,
		`UPDATE mfa_factors SET confirmed_at = $3 WHERE user_id = $1 AND kind = $2 AND confirmed_at IS NULL`, userID, kind, micro(now)))
}

func (p *Postgres) DeleteFactor(ctx context.Context, userID, kind string, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("delete factor: %w", ErrNotFound)
	}
	return wrap("delete factor", p.execAudited(ctx, scope{}, ev, `DELETE FROM mfa_factors WHERE user_id = $1 AND kind = $2`, userID, kind))
}
