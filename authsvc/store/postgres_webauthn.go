package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const webauthnColumns = `id, user_id, credential_id, public_key, sign_count, transports, aaguid, attestation_format,
	backup_eligible, backup_state, user_verified, name, created_at, last_used_at`

func scanWebAuthn(row pgx.Row) (WebAuthnCredential, error) {
	var c WebAuthnCredential
	var count int64
	var used *time.Time
	err := row.Scan(&c.ID, &c.UserID, &c.CredentialID, &c.PublicKey, &count, &c.Transports, &c.AAGUID, &c.AttestationFormat,
		&c.BackupEligible, &c.BackupState, &c.UserVerified, &c.Name, &c.CreatedAt, &used)
	c.SignCount, c.CreatedAt, c.LastUsedAt = uint32(count), c.CreatedAt.UTC(), fromNull(used)
	return c, err
}

func (p *Postgres) CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential, ev Event) error {
	if !validUUID(c.ID) {
		return fmt.Errorf("create webauthn credential: the id is not a UUID")
	}
	if !validUUID(c.UserID) {
		return fmt.Errorf("create webauthn credential: user: %w", ErrNotFound)
	}
	if c.Transports == nil {
		c.Transports = []string{}
	}
	if c.AAGUID == nil {
		c.AAGUID = []byte{}
	}
	// The user is checked in the statement: an unknown one inserts no row
	// (ErrNotFound), where the foreign key would answer a violation.
	err := p.execAudited(ctx, scope{}, ev, `INSERT INTO webauthn_credentials (id, user_id, credential_id, public_key, sign_count, transports, aaguid,
		attestation_format, backup_eligible, backup_state, user_verified, name, created_at, last_used_at)
		SELECT $1, u.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM users u WHERE u.id = $2`,
		c.ID, c.UserID, c.CredentialID, c.PublicKey, int64(c.SignCount), c.Transports, c.AAGUID, c.AttestationFormat,
		c.BackupEligible, c.BackupState, c.UserVerified, c.Name, micro(c.CreatedAt), nullTime(c.LastUsedAt))
	return wrap("create webauthn credential", err)
}

func (p *Postgres) ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error) {
	if !validUUID(userID) {
		return []WebAuthnCredential{}, nil
	}
	out, err := collect(scanWebAuthn)(p.pool.Query(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials
		WHERE user_id = $1 ORDER BY created_at, id`, userID))
	if err != nil {
		return nil, wrap("list webauthn credentials", err)
	}
	return out, nil
}

func (p *Postgres) FindWebAuthnCredential(ctx context.Context, credentialID []byte) (WebAuthnCredential, error) {
	c, err := scanWebAuthn(p.pool.QueryRow(ctx, `SELECT `+webauthnColumns+` FROM webauthn_credentials WHERE credential_id = $1`, credentialID))
	return c, wrap("find webauthn credential", err)
}

func (p *Postgres) UseWebAuthnCredential(ctx context.Context, userID, id string, signCount uint32, backupState bool, now time.Time) error {
	if !validUUID(userID, id) {
		return fmt.Errorf("use webauthn credential: %w", ErrNotFound)
	}
	// The counter rule in the statement: of parallel uses with one value,
	// the row lock lets one through and the others re-check and change
	// nothing.
	tag, err := p.pool.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = $3, backup_state = $4, last_used_at = $5
		WHERE id = $1 AND user_id = $2 AND ($3 > sign_count OR ($3 = 0 AND sign_count = 0))`,
		id, userID, int64(signCount), backupState, micro(now))
	if err != nil {
		return wrap("use webauthn credential", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webauthn_credentials WHERE id = $1 AND user_id = $2)`, id, userID).Scan(&exists); err != nil {
		return wrap("use webauthn credential", err)
	}
	if !exists {
		return fmt.Errorf("use webauthn credential: %w", ErrNotFound)
	}
	return fmt.Errorf("use webauthn credential: %w", ErrSignCount)
}

func (p *Postgres) DeleteWebAuthnCredential(ctx context.Context, userID, id string, ev Event) error {
	if !validUUID(userID, id) {
		return fmt.Errorf("delete webauthn credential: %w", ErrNotFound)
	}
	err := p.execAudited(ctx, scope{}, ev, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, id, userID)
	return wrap("delete webauthn credential", err)
}
