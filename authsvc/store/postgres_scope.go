package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Row-level security (migration 0014). The service's connections run as
// AppRole, which sees a company-scoped table's rows only for the company
// the transaction names in app.company_id (and a user's own memberships and
// sessions for the user in app.user_id). Every transaction of the store
// states its scope, set with SET LOCAL semantics (set_config(…, true)) in
// its first round trip, so a scope costs no round trip:
//
//   - companyScope: one company's rows (nearly every company-scoped method);
//   - userScope: the user's memberships and sessions, in any company, and
//     the companies of those memberships (login, the sessions list);
//   - a lookup scope: the company (or user) that a secret or name the caller
//     holds belongs to, found by a SECURITY DEFINER function of the owner's
//     in the same statement (refresh token, API key prefix, SSO domain);
//   - platformScope: every row, as PlatformRole (SET LOCAL ROLE), for the
//     platform admin's listings, the relays and background jobs. Each use
//     names its reason and is reported to the store's platform observer
//     (SetPlatformObserver; the service logs them); the admin operations
//     among them append their audit record in the same transaction.
//
// The zero scope sees no company's rows: right for the tables that have
// none (users and their factors, keys, the outboxes).

// The roles of migration 0014.
const (
	// OwnerRole owns the schema; migrations run as it.
	OwnerRole = "erpgate_owner"
	// AppRole is the service's role: not a superuser, no BYPASSRLS, owning
	// nothing, DML on the tables only.
	AppRole = "erpgate_app"
	// PlatformRole is the role of platform-admin and cross-company paths,
	// switched to per transaction.
	PlatformRole = "erpgate_platform"
)

// scope is the statement that scopes a transaction, queued after BEGIN.
type scope struct {
	sql      string
	args     []any
	platform string // the reason, for a platform transaction
}

const setScopeSQL = `SELECT set_config('app.company_id', $1, true), set_config('app.user_id', $2, true)`

// companyScope sees company's rows.
func companyScope(company string) scope {
	return scope{sql: setScopeSQL, args: []any{company, ""}}
}

// userScope sees user's memberships and sessions, in every company.
func userScope(user string) scope {
	return scope{sql: setScopeSQL, args: []any{"", user}}
}

// userCompanyScope sees both user's and company's rows.
func userCompanyScope(user, company string) scope {
	return scope{sql: setScopeSQL, args: []any{company, user}}
}

// refreshScope sees the rows of the user whose session refresh token
// hash belongs to; none when it belongs to no session.
func refreshScope(hash []byte) scope {
	return scope{sql: `SELECT set_config('app.user_id', COALESCE(erpgate_refresh_user($1), ''), true)`, args: []any{hash}}
}

// apiKeyScope sees the rows of the company of the API key with prefix.
func apiKeyScope(prefix string) scope {
	return scope{sql: `SELECT set_config('app.company_id', COALESCE(erpgate_api_key_company($1), ''), true)`, args: []any{prefix}}
}

// ssoDomainScope sees the rows of the company whose SSO connection has domain.
func ssoDomainScope(domain string) scope {
	return scope{sql: `SELECT set_config('app.company_id', COALESCE(erpgate_sso_domain_company($1), ''), true)`, args: []any{domain}}
}

// platformScope sees every row, as PlatformRole, for reason (a short
// constant: "admin: list companies", "relay: events", …).
func platformScope(reason string) scope {
	return scope{sql: `SET LOCAL ROLE ` + PlatformRole, platform: reason}
}

// queue queues the scope's statements on b and returns how many.
func (s scope) queue(b *pgx.Batch) int {
	if s.sql == "" {
		return 0
	}
	b.Queue(s.sql, s.args...)
	return 1
}

// SetPlatformObserver makes fn hear of every platform transaction, with its
// reason, before it starts (the service logs them). fn must be quick.
func (p *Postgres) SetPlatformObserver(fn func(ctx context.Context, reason string)) {
	p.platformObs = fn
}

func (p *Postgres) observePlatform(ctx context.Context, reason string) {
	if p.platformObs != nil {
		p.platformObs(ctx, reason)
	}
}

// inCompanyTx runs fn in a transaction that sees company's rows only.
func (p *Postgres) inCompanyTx(ctx context.Context, company string, fn func(t *tx) error) error {
	if company == "" {
		return errors.New("company transaction: no company")
	}
	return p.inTx(ctx, txSpec{scope: companyScope(company)}, fn)
}

// inPlatformTx runs fn in a platform transaction (every row), reported to
// the platform observer with reason.
func (p *Postgres) inPlatformTx(ctx context.Context, reason string, fn func(t *tx) error) error {
	if reason == "" {
		return errors.New("platform transaction: no reason")
	}
	return p.inTx(ctx, txSpec{scope: platformScope(reason)}, fn)
}

// read runs one query in scope sc in a transaction of one round trip
// (BEGIN, the scope, the query and COMMIT pipelined); fn reads its result
// with t.Row, t.Rows or t.Result.
func (p *Postgres) read(ctx context.Context, sc scope, fn func(t *tx) error, sql string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return p.inTx(ctx, txSpec{scope: sc, first: b, oneTrip: true}, fn)
}

// readRows reads every row of a query in scope sc (one round trip), into a
// slice that is never nil.
func readRows[T any](ctx context.Context, p *Postgres, sc scope, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := p.read(ctx, sc, func(t *tx) error {
		var err error
		out, err = collect(scan)(t.Rows())
		return err
	}, sql, args...)
	if out == nil {
		out = []T{}
	}
	return out, err
}

// readRow reads the one row of a query in scope sc (one round trip).
func readRow[T any](ctx context.Context, p *Postgres, sc scope, scan func(pgx.Row) (T, error), sql string, args ...any) (T, error) {
	var out T
	err := p.read(ctx, sc, func(t *tx) error {
		var err error
		out, err = scan(t.Row())
		return err
	}, sql, args...)
	return out, err
}

// execIn runs one statement in scope sc, unaudited (one round trip).
func (p *Postgres) execIn(ctx context.Context, sc scope, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := p.read(ctx, sc, func(t *tx) error {
		var err error
		tag, err = t.Result()
		return err
	}, sql, args...)
	return tag, err
}

// ConfigurePool makes cfg's connections run as AppRole (SET ROLE right
// after connecting), so that row-level security applies to every query
// of the pool, whichever role the URL logs in as: AppRole itself, a login
// role granted it, or the owner (one URL for the migrations and the
// service; see README "Tenancy"). A connection that cannot take the role
// (the migrations are not applied yet) fails; Migrate uses a connection of
// its own.
func ConfigurePool(cfg *pgxpool.Config) {
	prev := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if prev != nil {
			if err := prev(ctx, c); err != nil {
				return err
			}
		}
		if _, err := c.Exec(ctx, `SET ROLE `+AppRole); err != nil {
			return fmt.Errorf("postgres: take the role %s (is the database migrated? run `gateway erp migrate`): %w", AppRole, err)
		}
		return nil
	}
}

// CompanyTx runs fn in a transaction of pool that sees company's rows
// only (app.company_id): the seam for code outside the store with tables of
// its own under row-level security (webhooks).
func CompanyTx(ctx context.Context, pool *pgxpool.Pool, company string, fn func(pgx.Tx) error) error {
	if company == "" {
		return errors.New("company transaction: no company")
	}
	return pgx.BeginFunc(ctx, pool, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, setScopeSQL, company, ""); err != nil {
			return fmt.Errorf("set the transaction's company: %w", err)
		}
		return fn(t)
	})
}

// PlatformTx runs fn in a platform transaction of pool (every row, as
// PlatformRole), reporting reason to observe first (nil: not reported; a
// background job logs it instead): the seam for cross-company work outside
// the store (retention, pruning, erasure).
func PlatformTx(ctx context.Context, pool *pgxpool.Pool, reason string, observe func(ctx context.Context, reason string), fn func(pgx.Tx) error) error {
	if reason == "" {
		return errors.New("platform transaction: no reason")
	}
	if observe != nil {
		observe(ctx, reason)
	}
	return pgx.BeginFunc(ctx, pool, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, `SET LOCAL ROLE `+PlatformRole); err != nil {
			return fmt.Errorf("take the platform role: %w", err)
		}
		return fn(t)
	})
}
