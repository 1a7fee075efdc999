package fleet

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres stores the entries in erp_runtime_entries (migration
// 0016_cells, applied by authsvc/store.Migrate).
type Postgres struct{ pool *pgxpool.Pool }

// NewPostgres is the store on pool.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

// Since lists the entries with a revision above rev, in revision order.
func (p *Postgres) Since(ctx context.Context, rev int64) ([]Entry, error) {
	rows, err := p.pool.Query(ctx, `SELECT kind, name, value, revision, origin FROM erp_runtime_entries WHERE revision > $1 ORDER BY revision`, rev)
	if err != nil {
		return nil, fmt.Errorf("fleet: read entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var v []byte
		if err := rows.Scan(&e.Kind, &e.Name, &v, &e.Revision, &e.Origin); err != nil {
			return nil, fmt.Errorf("fleet: read entries: %w", err)
		}
		if v != nil {
			if e.Value, err = Canonical(v); err != nil {
				return nil, fmt.Errorf("fleet: entry %s: %w", e.Key, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet: read entries: %w", err)
	}
	return out, nil
}

// Put stores changes (one transaction), each with a new revision, and
// returns them as stored.
func (p *Postgres) Put(ctx context.Context, changes []Entry, origin string) ([]Entry, error) {
	out := make([]Entry, 0, len(changes))
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for _, c := range changes {
			var v any // SQL NULL for a deletion
			if c.Value != nil {
				v = json.RawMessage(c.Value)
			}
			var rev int64
			err := tx.QueryRow(ctx, `INSERT INTO erp_runtime_entries (kind, name, value, revision, origin, updated_at)
				VALUES ($1, $2, $3, nextval('erp_runtime_revision'), $4, now())
				ON CONFLICT (kind, name) DO UPDATE SET value = EXCLUDED.value, revision = EXCLUDED.revision,
					origin = EXCLUDED.origin, updated_at = EXCLUDED.updated_at
				RETURNING revision`, c.Kind, c.Name, v, origin).Scan(&rev)
			if err != nil {
				return err
			}
			c.Revision, c.Origin = rev, origin
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet: store entries: %w", err)
	}
	return out, nil
}
