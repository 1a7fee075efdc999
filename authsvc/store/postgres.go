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
// trips; every transaction, with the audit event it appends, runs through
// inTx (postgres_tx.go). The schema comes from Migrate. The domains'
// methods are in postgres_<domain>.go.
type Postgres struct {
	pool    *pgxpool.Pool
	appends appendNotifier // NotifyAppends
	// platformObs hears of every platform transaction (SetPlatformObserver).
	platformObs func(ctx context.Context, reason string)
}

// NewPostgres returns the store on pool. It does no I/O.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

var _ Store = (*Postgres)(nil)

// wrap wraps err with op; pgx.ErrNoRows and a foreign-key violation are
// ErrNotFound, a unique violation ErrConflict.
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

// validUUID reports whether every id is a UUID: an id that is not names a
// row that cannot exist ("not found" without a query).
func validUUID(ids ...string) bool {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return false
		}
	}
	return true
}

// affected is pgx.ErrNoRows when a statement changed no row: "not found".
func affected(tag pgconn.CommandTag, err error) error {
	if err == nil && tag.RowsAffected() == 0 {
		return pgx.ErrNoRows
	}
	return err
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

// collect reads every row of a query with scan, into a slice that is never
// nil: collect(scanUser)(p.pool.Query(ctx, …)).
func collect[T any](scan func(pgx.Row) (T, error)) func(pgx.Rows, error) ([]T, error) {
	return func(rows pgx.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
		if out == nil {
			out = []T{}
		}
		return out, err
	}
}

// listPage reads one page of a whole table in order, with the table's
// total, in scope sc (one round trip).
func listPage[T any](ctx context.Context, p *Postgres, sc scope, op, table, columns, order string, pg Page, scan func(pgx.Row) (T, error)) ([]T, int64, error) {
	var total int64
	var out []T
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM ` + table)
	b.Queue(`SELECT `+columns+` FROM `+table+` ORDER BY `+order+` LIMIT $1 OFFSET $2`, pg.Limit, pg.Offset)
	err := p.inTx(ctx, txSpec{scope: sc, first: b, oneTrip: true}, func(t *tx) error {
		if err := t.Row().Scan(&total); err != nil {
			return err
		}
		var err error
		out, err = collect(scan)(t.Rows())
		return err
	})
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}
