package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
)

// Postgres is the Store on the auth service's database (tables of
// migration 0008_webhooks, applied by authsvc/store.Migrate). Every query
// of a company's rows names the company, and runs in a transaction scoped
// to it (row-level security, migration 0014: store.CompanyTx); the
// cross-company ones (the resync's listing, pruning) are platform
// transactions (store.PlatformTx).
type Postgres struct{ pool *pgxpool.Pool }

// company runs fn in a transaction that sees company's rows only.
func (p *Postgres) company(ctx context.Context, company string, fn func(pgx.Tx) error) error {
	return store.CompanyTx(ctx, p.pool, company, fn)
}

// NewPostgres is the Store on pool.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

var _ Store = (*Postgres)(nil)

const endpointColumns = `id, company_id, url, events, description, enabled, disabled_reason, failing_since,
	secret_sealed, old_secret_sealed, old_secret_expires, created_at, updated_at`

func scanEndpoint(row pgx.Row) (Record, error) {
	var r Record
	err := row.Scan(&r.ID, &r.CompanyID, &r.URL, &r.Events, &r.Description, &r.Enabled, &r.DisabledReason, &r.FailingSince,
		&r.Secret, &r.OldSecret, &r.OldSecretExpires, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, err
	}
	utc(&r.CreatedAt)
	utc(&r.UpdatedAt)
	utcp(r.FailingSince)
	utcp(r.OldSecretExpires)
	return r, nil
}

func utc(t *time.Time) { *t = t.UTC() }

func utcp(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

func (p *Postgres) CreateEndpoint(ctx context.Context, r Record, max int) error {
	err := p.company(ctx, r.CompanyID, func(tx pgx.Tx) error {
		// One creator per company at a time, so the count holds.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('erpgate.webhooks:' || $1, 0))`, r.CompanyID); err != nil {
			return err
		}
		if max > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE company_id = $1`, r.CompanyID).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return ErrLimit
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (`+endpointColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			r.ID, r.CompanyID, r.URL, r.Events, r.Description, r.Enabled, r.DisabledReason, r.FailingSince,
			r.Secret, r.OldSecret, r.OldSecretExpires, r.CreatedAt, r.UpdatedAt)
		return err
	})
	if errors.Is(err, ErrLimit) {
		return err
	}
	if err != nil {
		return fmt.Errorf("webhooks: create endpoint: %w", err)
	}
	return nil
}

func list(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]Record, error) {
	rows, err := tx.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		r, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (p *Postgres) ListEndpoints(ctx context.Context, company string) ([]Record, error) {
	var out []Record
	err := p.company(ctx, company, func(tx pgx.Tx) (err error) {
		out, err = list(ctx, tx, `WHERE company_id = $1`, company)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	return out, nil
}

func (p *Postgres) AllEndpoints(ctx context.Context) ([]Record, error) {
	var out []Record
	err := store.PlatformTx(ctx, p.pool, "background: webhooks: every endpoint", nil, func(tx pgx.Tx) (err error) {
		out, err = list(ctx, tx, ``)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: all endpoints: %w", err)
	}
	return out, nil
}

func (p *Postgres) GetEndpoint(ctx context.Context, company, id string) (Record, error) {
	var r Record
	err := p.company(ctx, company, func(tx pgx.Tx) (err error) {
		r, err = scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
			WHERE company_id = $1 AND id = $2`, company, id))
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Record{}, fmt.Errorf("webhooks: get endpoint: %w", err)
	}
	return r, err
}

func (p *Postgres) UpdateEndpoint(ctx context.Context, company, id string, fn func(*Record) error) (Record, error) {
	var out Record
	err := p.company(ctx, company, func(tx pgx.Tx) error {
		r, err := scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
			WHERE company_id = $1 AND id = $2 FOR UPDATE`, company, id))
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $3, events = $4, description = $5, enabled = $6,
			disabled_reason = $7, failing_since = $8, secret_sealed = $9, old_secret_sealed = $10,
			old_secret_expires = $11, updated_at = $12
			WHERE company_id = $1 AND id = $2`,
			company, id, r.URL, r.Events, r.Description, r.Enabled, r.DisabledReason, r.FailingSince,
			r.Secret, r.OldSecret, r.OldSecretExpires, r.UpdatedAt)
		r.ID, r.CompanyID = id, company
		out = r
		return err
	})
	return out, err
}

func (p *Postgres) DeleteEndpoint(ctx context.Context, company, id string) error {
	var tag pgconn.CommandTag
	err := p.company(ctx, company, func(tx pgx.Tx) (err error) {
		tag, err = tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE company_id = $1 AND id = $2`, company, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("webhooks: delete endpoint: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

func (p *Postgres) AddDelivery(ctx context.Context, d DeliveryRecord) (int, error) {
	var n int
	err := p.company(ctx, d.CompanyID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, company_id, event_id, event_type,
			stream_seq, attempt, status, http_status, error, duration_ms, response, at, next_attempt_at)
		SELECT $1, $2, $3, $4, $5, $6,
			COALESCE((SELECT max(attempt) FROM webhook_deliveries WHERE endpoint_id = $2 AND event_id = $4), 0) + 1,
			$7, $8, $9, $10, $11, $12, $13
		WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $2 AND company_id = $3)
		RETURNING attempt`,
			d.ID, d.EndpointID, d.CompanyID, d.EventID, d.EventType, int64(d.StreamSeq), d.Status, d.HTTPStatus, d.Error,
			d.DurationMS, d.Response, d.At, d.NextAttempt).Scan(&n)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("webhooks: add delivery: %w", err)
	}
	return n, nil
}

const deliveryColumns = `id, endpoint_id, event_id, event_type, attempt, status, http_status, error, duration_ms,
	response, at, next_attempt_at, company_id, stream_seq`

func scanDelivery(row pgx.Row) (DeliveryRecord, error) {
	var d DeliveryRecord
	var seq int64
	err := row.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.Attempt, &d.Status, &d.HTTPStatus, &d.Error,
		&d.DurationMS, &d.Response, &d.At, &d.NextAttempt, &d.CompanyID, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeliveryRecord{}, ErrNotFound
	}
	d.StreamSeq = uint64(seq)
	utc(&d.At)
	utcp(d.NextAttempt)
	return d, err
}

func (p *Postgres) Deliveries(ctx context.Context, company, endpointID string, limit int, before string) ([]Delivery, error) {
	out := []Delivery{}
	err := p.company(ctx, company, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE company_id = $1 AND id = $2)`,
			company, endpointID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE endpoint_id = $1 AND company_id = $2 AND ($3 = '' OR id < $3)
			ORDER BY id DESC LIMIT $4`, endpointID, company, before, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			out = append(out, d.Delivery)
		}
		return rows.Err()
	})
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	return out, nil
}

func (p *Postgres) GetDelivery(ctx context.Context, company, endpointID, id string) (DeliveryRecord, error) {
	var d DeliveryRecord
	err := p.company(ctx, company, func(tx pgx.Tx) (err error) {
		d, err = scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE company_id = $1 AND endpoint_id = $2 AND id = $3`, company, endpointID, id))
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return DeliveryRecord{}, fmt.Errorf("webhooks: get delivery: %w", err)
	}
	return d, err
}

func (p *Postgres) PruneDeliveries(ctx context.Context, t time.Time) (int64, error) {
	var tag pgconn.CommandTag
	err := store.PlatformTx(ctx, p.pool, "background: webhooks: prune deliveries", nil, func(tx pgx.Tx) (err error) {
		tag, err = tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE at < $1`, t)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("webhooks: prune deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}
