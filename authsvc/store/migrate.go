package store

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// rlsVersion is the migration that creates the roles (0014_rls.sql): the
// later ones run as OwnerRole, so that what they create is the owner's and
// gets the grants of its default privileges.
const rlsVersion = 14

// Migrate applies the embedded migrations that are not applied yet, each in
// a transaction of its own that records it in erpgate_schema_migrations, and
// returns the versions it applied. Concurrent callers apply each migration
// once: each transaction takes the advisory lock, then checks the version.
//
// It runs on a connection of its own, made with pool's connection settings
// but without the pool's AfterConnect (ConfigurePool's SET ROLE): as the
// role the URL logs in as, which must be the owner (a superuser, or a role
// granted OwnerRole) when a migration is pending. A schema that is up to
// date is only read, which the service's role may do.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	return MigrateTo(ctx, pool, math.MaxInt)
}

// migration is one embedded file.
type migration struct {
	version int
	name    string
}

func embeddedMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	out, prev := []migration{}, 0
	for _, f := range files {
		name := path.Base(f)
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || len(num) != 4 || v <= prev {
			return nil, fmt.Errorf("migrate: %q: the name must start with a new four-digit number", name)
		}
		prev = v
		out = append(out, migration{v, name})
	}
	return out, nil
}

// MigrateTo is Migrate up to and including version: a database left at an
// older schema, as the tests of a later migration's data step need.
func MigrateTo(ctx context.Context, pool *pgxpool.Pool, version int) ([]int, error) {
	all, err := embeddedMigrations()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	pending, err := pendingMigrations(ctx, conn, all, version)
	if err != nil || len(pending) == 0 {
		return []int{}, err
	}
	done := []int{}
	for _, m := range pending {
		applied, err := applyMigration(ctx, conn, m)
		for try := 1; err != nil && try < 5 && lostRoleRace(err); try++ {
			// Roles are cluster-wide: another database's migration created
			// or granted one meanwhile. The transaction rolled back; again.
			select {
			case <-ctx.Done():
				return done, ctx.Err()
			case <-time.After(time.Duration(try) * 50 * time.Millisecond):
			}
			applied, err = applyMigration(ctx, conn, m)
		}
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
				return done, fmt.Errorf("migrate: apply %s: %w (run `gateway erp migrate` as the schema's owner: see README's Tenancy section)", m.name, err)
			}
			return done, fmt.Errorf("migrate: apply %s: %w", m.name, err)
		}
		if applied {
			done = append(done, m.version)
		}
	}
	return done, nil
}

// pendingMigrations reads, without a lock or a change, which of all up to
// version are not applied: all of them when the schema is new. A migration
// applied meanwhile is skipped under the lock.
func pendingMigrations(ctx context.Context, conn *pgx.Conn, all []migration, version int) ([]migration, error) {
	var table *string
	if err := conn.QueryRow(ctx, `SELECT to_regclass('erpgate_schema_migrations')::text`).Scan(&table); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	have := map[int]bool{}
	if table != nil {
		rows, err := conn.Query(ctx, `SELECT version FROM erpgate_schema_migrations`)
		if err != nil {
			return nil, fmt.Errorf("migrate: read the applied versions: %w", err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return nil, fmt.Errorf("migrate: read the applied versions: %w", err)
		}
		for _, v := range vs {
			have[int(v)] = true
		}
	}
	var out []migration
	for _, m := range all {
		if m.version <= version && !have[m.version] {
			out = append(out, m)
		}
	}
	return out, nil
}

// applyMigration applies m in a transaction of its own, unless it was
// applied meanwhile, and reports whether it did.
func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) (bool, error) {
	sql, err := migrations.ReadFile("migrations/" + m.name)
	if err != nil {
		return false, err
	}
	first := &pgx.Batch{}
	first.Queue(`SELECT pg_advisory_xact_lock($1)`, migrationLock) // held until the transaction ends
	first.Queue(`CREATE TABLE IF NOT EXISTS erpgate_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	applied := false
	err = runTx(ctx, conn, txSpec{first: first}, func(t *tx) error {
		_, errLock := t.Result()
		_, errTable := t.Result()
		err := cmp.Or(errLock, errTable,
			t.QueryRow(`SELECT EXISTS (SELECT 1 FROM erpgate_schema_migrations WHERE version = $1)`, m.version).Scan(&applied))
		if err != nil || applied {
			return err
		}
		if m.version > rlsVersion {
			if _, err := t.Exec(`SET LOCAL ROLE ` + OwnerRole); err != nil {
				return err
			}
		}
		if _, err := t.Exec(string(sql)); err != nil {
			return err
		}
		if step := goSteps[m.version]; step != nil {
			if err := step(t); err != nil {
				return err
			}
		}
		_, err = t.Exec(`INSERT INTO erpgate_schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
		return err
	})
	if pc := conn.PgConn(); !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() != 'I' {
		_, _ = conn.Exec(ctx, "rollback")
	}
	return !applied && err == nil, err
}

// lostRoleRace reports whether err is a migration's losing race with
// another database's on a cluster-wide role.
func lostRoleRace(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23505", "42710", "40001", "40P01": // unique_violation, duplicate_object, serialization, deadlock
		return true
	case "XX000":
		return strings.Contains(pe.Message, "tuple concurrently updated")
	}
	return false
}
