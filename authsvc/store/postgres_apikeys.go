package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

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

func (p *Postgres) CreateAPIKey(ctx context.Context, k APIKey, ev Event) error {
	if !validUUID(k.ID) {
		return fmt.Errorf("create api key: invalid id")
	}
	err := p.execAudited(ctx, companyScope(k.CompanyID), ev, `INSERT INTO api_keys (id, company_id, name, prefix, secret_hash, scope, plan, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.CompanyID, k.Name, k.Prefix, k.SecretHash, k.Scope, k.Plan, k.CreatedBy, micro(k.CreatedAt), nullTime(k.ExpiresAt))
	return wrap("create api key", err)
}

func (p *Postgres) ListAPIKeys(ctx context.Context, companyID string) ([]APIKey, error) {
	out, err := readRows(ctx, p, companyScope(companyID), scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys WHERE company_id = $1 ORDER BY created_at, id`, companyID)
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	return out, nil
}

func (p *Postgres) GetAPIKey(ctx context.Context, companyID, id string) (APIKey, error) {
	if !validUUID(id) {
		return APIKey{}, fmt.Errorf("get api key: %w", ErrNotFound)
	}
	k, err := readRow(ctx, p, companyScope(companyID), scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1 AND company_id = $2`, id, companyID)
	return k, wrap("get api key", err)
}

func (p *Postgres) RotateAPIKey(ctx context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time, ev Event) (APIKey, error) {
	if !validUUID(id) {
		return APIKey{}, fmt.Errorf("rotate api key: %w", ErrNotFound)
	}
	var k APIKey
	first := &pgx.Batch{}
	first.Queue(`UPDATE api_keys SET prev_secret_hash = secret_hash, prev_expires_at = $3, secret_hash = $4
		WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL RETURNING `+apiKeyColumns, id, companyID, micro(graceUntil), newHash)
	err := p.inTx(ctx, txSpec{scope: companyScope(companyID), first: first, ev: &ev, lockFirst: true}, func(t *tx) error {
		var err error
		k, err = scanAPIKey(t.Row())
		return err
	})
	return k, wrap("rotate api key", err)
}

func (p *Postgres) RevokeAPIKey(ctx context.Context, companyID, id string, now time.Time, ev Event) error {
	if !validUUID(id) {
		return fmt.Errorf("revoke api key: %w", ErrNotFound)
	}
	err := p.execAudited(ctx, companyScope(companyID), ev, `UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND company_id = $2 AND revoked_at IS NULL`,
		id, companyID, micro(now))
	return wrap("revoke api key", err)
}

func (p *Postgres) FindAPIKey(ctx context.Context, prefix string) (APIKey, error) {
	k, err := readRow(ctx, p, apiKeyScope(prefix), scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`, prefix)
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
	// The uses of every company's keys, flushed in one statement by a
	// background job: a platform transaction.
	_, err := p.execIn(ctx, platformScope("background: record api key uses"), `UPDATE api_keys k SET use_count = k.use_count + u.n,
			last_used_at = GREATEST(COALESCE(k.last_used_at, u.t), u.t)
		FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS u(id, n, t) WHERE k.id = u.id`, ids, counts, lasts)
	return wrap("record api key uses", err)
}
