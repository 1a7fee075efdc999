package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func (p *Postgres) PutPendingTOTP(ctx context.Context, t TOTP, ev Event) error {
	if !validUUID(t.UserID) {
		return fmt.Errorf("put pending totp: %w", ErrNotFound)
	}
	// Replaces a pending enrolment; a confirmed one stays (no row changes).
	err := p.execAudited(ctx, scope{}, ev, `INSERT INTO totp_secrets (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET sealed_secret = EXCLUDED.sealed_secret, created_at = EXCLUDED.created_at
		WHERE totp_secrets.confirmed_at IS NULL`, t.UserID, t.SealedSecret, micro(t.CreatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("put pending totp: %w", ErrConflict)
	}
	return wrap("put pending totp", err)
}

func (p *Postgres) GetTOTP(ctx context.Context, userID string) (TOTP, error) {
	if !validUUID(userID) {
		return TOTP{}, fmt.Errorf("get totp: %w", ErrNotFound)
	}
	t := TOTP{UserID: userID}
	var confirmed *time.Time
	err := p.pool.QueryRow(ctx, `SELECT sealed_secret, created_at, confirmed_at FROM totp_secrets WHERE user_id = $1`, userID).
		Scan(&t.SealedSecret, &t.CreatedAt, &confirmed)
	t.CreatedAt, t.ConfirmedAt = t.CreatedAt.UTC(), fromNull(confirmed)
	return t, wrap("get totp", err)
}

func (p *Postgres) ConfirmTOTP(ctx context.Context, userID string, recoveryHashes [][]byte, now time.Time, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("confirm totp: %w", ErrNotFound)
	}
	first := &pgx.Batch{}
	first.Queue(`UPDATE totp_secrets SET confirmed_at = $2 WHERE user_id = $1 AND confirmed_at IS NULL`, userID, micro(now))
	first.Queue(`DELETE FROM recovery_codes WHERE user_id = $1`, userID)
	first.Queue(`INSERT INTO recovery_codes (user_id, hash) SELECT $1, h FROM unnest($2::bytea[]) AS h`, userID, recoveryHashes)
	err := p.inTx(ctx, txSpec{first: first, ev: &ev, lockFirst: true}, func(t *tx) error {
		return affected(t.Result()) // no pending enrolment: roll the codes back
	})
	return wrap("confirm totp", err)
}

func (p *Postgres) DeleteTOTP(ctx context.Context, userID string, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("delete totp: %w", ErrNotFound)
	}
	first := &pgx.Batch{}
	first.Queue(`DELETE FROM totp_secrets WHERE user_id = $1`, userID)
	first.Queue(`DELETE FROM recovery_codes WHERE user_id = $1`, userID)
	err := p.inTx(ctx, txSpec{first: first, ev: &ev, lockFirst: true}, func(t *tx) error {
		return affected(t.Result())
	})
	return wrap("delete totp", err)
}

func (p *Postgres) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time, ev Event) (int, error) {
	if !validUUID(userID) {
		return 0, fmt.Errorf("use recovery code: %w", ErrNotFound)
	}
	var left int
	// The row lock orders parallel uses of one code; the later ones re-check
	// used_at IS NULL and change nothing.
	first := &pgx.Batch{}
	first.Queue(`UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND hash = $2 AND used_at IS NULL`, userID, hash, micro(now))
	first.Queue(`SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID)
	err := p.inTx(ctx, txSpec{first: first, ev: &ev, lockFirst: true}, func(t *tx) error {
		if err := affected(t.Result()); err != nil {
			return err
		}
		return t.Row().Scan(&left)
	})
	if err != nil {
		return 0, wrap("use recovery code", err)
	}
	return left, nil
}
