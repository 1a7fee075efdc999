package store

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is the SQL files of migrations/, numbered with four digits
// (0001_init.sql, …) so that their names sort in the order they apply in.
//
//go:embed migrations/*.sql
var migrations embed.FS

// goSteps are the migrations' Go parts, by version: each runs right after
// its SQL in the same transaction (0005 normalises existing login names).
var goSteps = map[int]func(t *tx) error{5: backfillLoginNames}

// migrationLock is the advisory lock key that serialises migrators: several
// instances starting at once, `gateway erp migrate`, and the runner of
// earlier versions (which held it for its whole session).
const migrationLock int64 = 0x6572706761746531 // "erpgate1"

// Migrate applies the embedded migrations that are not applied yet, each in
// a transaction of its own that records it in erpgate_schema_migrations, and
// returns the versions it applied. Concurrent callers apply each migration
// once: each transaction takes the advisory lock, then checks the version.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	return MigrateTo(ctx, pool, math.MaxInt)
}

// MigrateTo is Migrate up to and including version: a database left at an
// older schema, as the tests of a later migration's data step need.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int) ([]int, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p, done, prev := &Postgres{pool: pool}, []int{}, 0
	for _, f := range files {
		name := path.Base(f)
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || len(num) != 4 || v <= prev {
			return done, fmt.Errorf("migrate: %q: the name must start with a new four-digit number", name)
		}
		if prev = v; v > version {
			break
		}
		sql, err := migrations.ReadFile(f)
		if err != nil {
			return done, fmt.Errorf("migrate: %w", err)
		}
		first := &pgx.Batch{}
		first.Queue(`SELECT pg_advisory_xact_lock($1)`, migrationLock) // held until the transaction ends
		first.Queue(`CREATE TABLE IF NOT EXISTS erpgate_schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
		applied := false
		err = p.inTx(ctx, txSpec{first: first}, func(t *tx) error {
			_, errLock := t.Result()
			_, errTable := t.Result()
			err := cmp.Or(errLock, errTable,
				t.QueryRow(`SELECT EXISTS (SELECT 1 FROM erpgate_schema_migrations WHERE version = $1)`, v).Scan(&applied))
			if err != nil || applied {
				return err
			}
			if _, err := t.Exec(string(sql)); err != nil {
				return err
			}
			if step := goSteps[v]; step != nil {
				if err := step(t); err != nil {
					return err
				}
			}
			_, err = t.Exec(`INSERT INTO erpgate_schema_migrations (version, name) VALUES ($1, $2)`, v, name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migrate: apply %s: %w", name, err)
		}
		if !applied {
			done = append(done, v)
		}
	}
	return done, nil
}
