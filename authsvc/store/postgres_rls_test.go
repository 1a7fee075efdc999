package store

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/internal/testenv"
)

// rlsDB is a migrated database with two companies' rows in every
// company-scoped table, seeded by the owner; app is a pool as the service
// runs it (ConfigurePool).
type rlsDB struct {
	url        string
	owner, app *pgxpool.Pool
	a, b       string // the companies
	userA      string // alice, member of a
	userB      string // bob, member of b
}

// rlsTables are the company-scoped tables and their company column.
var rlsTables = map[string]string{
	"companies": "id", "memberships": "company_id", "sessions": "company_id", "api_keys": "company_id",
	"sso_connections": "company_id", "webhook_endpoints": "company_id", "webhook_deliveries": "company_id",
	"audit_events": "company_id",
}

func newRLSDB(t testing.TB) *rlsDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := &rlsDB{url: testenv.Postgres(t)}
	var err error
	if d.owner, err = pgxpool.New(ctx, d.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.owner.Close)
	if _, err := Migrate(ctx, d.owner); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(d.url)
	if err != nil {
		t.Fatal(err)
	}
	ConfigurePool(cfg)
	if d.app, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.app.Close)
	sfx := uuid.NewString()[:8]
	d.a, d.b, d.userA, d.userB = "a-"+sfx, "b-"+sfx, uuid.NewString(), uuid.NewString()
	for _, c := range []struct{ company, user, name string }{{d.a, d.userA, "alice"}, {d.b, d.userB, "bob"}} {
		conn := uuid.NewString()
		endpoint := "whe_" + c.company
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO companies (id, name, plan, created_at) VALUES ($1, $1, 'free', now())`, []any{c.company}},
			{`INSERT INTO users (id, email, email_skeleton, password_hash, password_changed_at, created_at) VALUES ($1, $2, $2, 'x', now(), now())`,
				[]any{c.user, c.name + "-" + sfx + "@rls.test"}},
			{`INSERT INTO memberships (user_id, company_id, roles, created_at) VALUES ($1, $2, '{admin}', now())`, []any{c.user, c.company}},
			{`INSERT INTO sessions (id, user_id, company_id, created_at, last_used_at, expires_at) VALUES ($1, $2, $3, now(), now(), now() + interval '1 hour')`,
				[]any{uuid.NewString(), c.user, c.company}},
			{`INSERT INTO api_keys (id, company_id, prefix, secret_hash, scope, plan, created_at) VALUES ($1, $2, $3, '\x00', '{}', 'free', now())`,
				[]any{uuid.NewString(), c.company, "erp_" + c.company}},
			{`INSERT INTO sso_connections (id, company_id, kind, name, jit, default_role, required, created_at) VALUES ($1, $2, 'oidc', 'idp', false, 'viewer', false, now())`,
				[]any{conn, c.company}},
			{`INSERT INTO sso_domains (domain, connection_id) VALUES ($1, $2)`, []any{c.company + ".rls.test", conn}},
			{`INSERT INTO webhook_endpoints (id, company_id, url, events, secret_sealed, created_at, updated_at) VALUES ($1, $2, 'https://example.test', '{}', '\x00', now(), now())`,
				[]any{endpoint, c.company}},
			{`INSERT INTO webhook_deliveries (id, endpoint_id, company_id, event_id, event_type, attempt, status, duration_ms, at) VALUES ($1, $2, $3, 'e', 't', 1, 'succeeded', 1, now())`,
				[]any{"whd_" + c.company, endpoint, c.company}},
		} {
			if _, err := d.owner.Exec(ctx, q.sql, q.args...); err != nil {
				t.Fatalf("seed: %s: %v", q.sql, err)
			}
		}
		if err := NewPostgres(d.owner).AppendAudit(ctx, Event{Time: time.Now(), Type: "test", CompanyID: c.company, ActorID: c.user}); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// asApp runs fn in a transaction of the app's pool with app.company_id
// set to company ("": not set).
func (d *rlsDB) asApp(t *testing.T, company string, fn func(tx pgx.Tx) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return pgx.BeginFunc(ctx, d.app, func(tx pgx.Tx) error {
		if company != "" {
			if _, err := tx.Exec(ctx, `SET LOCAL app.company_id = '`+company+`'`); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

func count(t *testing.T, tx pgx.Tx, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := tx.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestRLSNoCompanySeesNothing(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	// Twice on one connection: after a transaction that set the company,
	// the setting is '' (not NULL) on the pooled connection, and '' must
	// still match no row.
	for range 2 {
		must(t, d.asApp(t, "", func(tx pgx.Tx) error {
			for table := range rlsTables {
				if n := count(t, tx, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("%s: %d rows visible with no company set, want 0", table, n)
				}
			}
			return nil
		}))
		must(t, d.asApp(t, d.a, func(tx pgx.Tx) error { return nil }))
	}
	// Outside any transaction too.
	var n int
	must(t, d.app.QueryRow(context.Background(), `SELECT count(*) FROM api_keys`).Scan(&n))
	if n != 0 {
		t.Errorf("api_keys: %d rows visible outside a transaction, want 0", n)
	}
}

func TestRLSCompanyCannotReachAnother(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	ctx := context.Background()
	must(t, d.asApp(t, d.a, func(tx pgx.Tx) error {
		for table, col := range rlsTables {
			// Its own rows are there…
			if n := count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, d.a); n == 0 {
				t.Errorf("%s: company a sees none of its rows", table)
			}
			// …another company's are not, even asked for by name.
			if n := count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1 OR true`, d.b); n != count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, d.a) {
				t.Errorf("%s: a wrong WHERE reaches rows of another company", table)
			}
			if n := count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, d.b); n != 0 {
				t.Errorf("%s: company a reads %d rows of company b", table, n)
			}
		}
		return nil
	}))
	// Updates and deletes of b's rows change nothing.
	for table, col := range rlsTables {
		if table == "audit_events" {
			continue // not updatable by the app at all (below)
		}
		err := d.asApp(t, d.a, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE `+table+` SET `+col+` = `+col+` WHERE `+col+` = $1`, d.b)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 0 {
				t.Errorf("%s: company a updated %d rows of company b", table, tag.RowsAffected())
			}
			if tag, err = tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+col+` = $1`, d.b); err != nil {
				return err
			}
			if tag.RowsAffected() != 0 {
				t.Errorf("%s: company a deleted %d rows of company b", table, tag.RowsAffected())
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
	}
	// A row of its own cannot be moved to b, and none inserted for b.
	for _, q := range []string{
		`UPDATE api_keys SET company_id = $1`,
		`INSERT INTO api_keys (id, company_id, prefix, secret_hash, scope, plan, created_at) VALUES (gen_random_uuid(), $1, 'erp_x' || $1, '\x00', '{}', 'free', now())`,
		`INSERT INTO memberships (user_id, company_id, roles, created_at) SELECT id, $1, '{admin}', now() FROM users`,
		`INSERT INTO companies (id, name, plan, created_at) VALUES ($1 || '-2', 'x', 'free', now())`,
		`INSERT INTO webhook_endpoints (id, company_id, url, events, secret_sealed, created_at, updated_at) VALUES ('whe_x', $1, 'https://x.test', '{}', '\x00', now(), now())`,
		`INSERT INTO sessions (id, user_id, company_id, created_at, last_used_at, expires_at) SELECT gen_random_uuid(), id, $1, now(), now(), now() FROM users`,
	} {
		err := d.asApp(t, d.a, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, q, d.b)
			return err
		})
		if code := pgCode(err); code != "42501" {
			t.Errorf("%s as company a for company b: %v (code %q), want a row-level security violation (42501)", q, err, code)
		}
	}
	// b's rows are all still there, as b sees them.
	must(t, d.asApp(t, d.b, func(tx pgx.Tx) error {
		for table, col := range rlsTables {
			if n := count(t, tx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, d.b); n == 0 {
				t.Errorf("%s: company b's rows are gone", table)
			}
		}
		return nil
	}))
}

func TestRLSAppRoleCannotChangeTheSchema(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	ctx := context.Background()
	var super, bypass bool
	var user string
	must(t, d.app.QueryRow(ctx, `SELECT current_user, r.rolsuper, r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&user, &super, &bypass))
	if user != AppRole || super || bypass {
		t.Fatalf("the app pool runs as %s (superuser %v, bypassrls %v), want %s, neither", user, super, bypass, AppRole)
	}
	var owned int
	must(t, d.app.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1::regrole)
		+ (SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole)
		+ (SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole)`, AppRole).Scan(&owned))
	if owned != 0 {
		t.Errorf("%s owns %d objects, want none", AppRole, owned)
	}
	for _, q := range []string{
		`ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY`,
		`ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY`,
		`DROP POLICY api_keys_app ON api_keys`,
		`ALTER TABLE sessions ADD COLUMN x int`,
		`DROP TABLE memberships`,
		`TRUNCATE audit_events`,
		`UPDATE audit_events SET type = 'x'`,
		`DELETE FROM audit_events`,
		`CREATE TABLE x (id int)`,
		`ALTER ROLE erpgate_app BYPASSRLS`,
	} {
		_, err := d.app.Exec(ctx, q)
		if code := pgCode(err); code != "42501" && code != "42P01" {
			t.Errorf("%s as %s: %v (code %q), want a permission error", q, AppRole, err, code)
		}
	}
}

// TestRLSEveryCompanyTableIsCovered: a table with a company_id column
// (this schema's, and a later migration's) has forced row-level security.
func TestRLSEveryCompanyTableIsCovered(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	rows, err := d.owner.Query(context.Background(), `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
		FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
			AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped)
				OR c.relname = 'companies')`)
	must(t, err)
	type row struct {
		name          string
		rls, forceRLS bool
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.name, &x.rls, &x.forceRLS)
	})
	must(t, err)
	var names []string
	for _, r := range got {
		names = append(names, r.name)
		if !r.rls || !r.forceRLS {
			t.Errorf("%s has a company but row-level security enabled %v, forced %v: add them and a policy (see 0014_rls.sql)", r.name, r.rls, r.forceRLS)
		}
	}
	for table := range rlsTables {
		if !slices.Contains(names, table) {
			t.Errorf("%s: not found among the company tables %v", table, names)
		}
	}
}

// TestRLSScopes: the store's seams see what their scope names, and a
// platform transaction is reported with its reason.
func TestRLSScopes(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	ctx := context.Background()
	p := NewPostgres(d.app)
	var mu sync.Mutex
	var heard []string
	p.SetPlatformObserver(func(_ context.Context, reason string) { mu.Lock(); heard = append(heard, reason); mu.Unlock() })
	companies := func(t *tx) ([]string, error) {
		rows, err := t.Query(`SELECT company_id FROM api_keys ORDER BY company_id`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var got []string
	must(t, p.inCompanyTx(ctx, d.a, func(t *tx) (err error) { got, err = companies(t); return err }))
	if !slices.Equal(got, []string{d.a}) {
		t.Errorf("company tx sees the keys of %v, want [%s]", got, d.a)
	}
	must(t, p.inTx(ctx, txSpec{}, func(t *tx) (err error) { got, err = companies(t); return err }))
	if len(got) != 0 {
		t.Errorf("an unscoped tx sees the keys of %v, want none", got)
	}
	var role string
	must(t, p.inPlatformTx(ctx, "test: every key", func(t *tx) error {
		var err error
		if got, err = companies(t); err != nil {
			return err
		}
		return t.QueryRow(`SELECT current_user`).Scan(&role)
	}))
	if len(got) != 2 || role != PlatformRole {
		t.Errorf("platform tx as %s sees the keys of %v, want both companies' as %s", role, got, PlatformRole)
	}
	must(t, p.inTx(ctx, txSpec{}, func(t *tx) error { return t.QueryRow(`SELECT current_user`).Scan(&role) }))
	if role != AppRole {
		t.Errorf("after a platform tx the connection runs as %s, want %s", role, AppRole)
	}
	if err := p.inCompanyTx(ctx, "", func(*tx) error { return nil }); err == nil {
		t.Error("a company tx without a company ran")
	}
	if err := p.inPlatformTx(ctx, "", func(*tx) error { return nil }); err == nil {
		t.Error("a platform tx without a reason ran")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(heard, []string{"test: every key"}) {
		t.Errorf("platform observer heard %q, want the one platform tx", heard)
	}
	// The lookups find the scope of a secret or a name, and nothing else.
	k, err := p.FindAPIKey(ctx, "erp_"+d.b)
	if err != nil || k.CompanyID != d.b {
		t.Errorf("FindAPIKey(b's prefix) = %q, %v; want b's key", k.CompanyID, err)
	}
	if _, err := p.FindAPIKey(ctx, "erp_nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindAPIKey(unknown) = %v, want ErrNotFound", err)
	}
	c, err := p.SSOConnectionForDomain(ctx, d.a+".rls.test")
	if err != nil || c.CompanyID != d.a {
		t.Errorf("SSOConnectionForDomain(a's) = %q, %v; want a's", c.CompanyID, err)
	}
	// The seams for code outside the store.
	var n int
	must(t, CompanyTx(ctx, d.app, d.b, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints`).Scan(&n)
	}))
	if n != 1 {
		t.Errorf("CompanyTx sees %d endpoints, want b's one", n)
	}
	must(t, PlatformTx(ctx, d.app, "test: every endpoint", nil, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints`).Scan(&n)
	}))
	if n != 2 {
		t.Errorf("PlatformTx sees %d endpoints, want 2", n)
	}
}

// TestRLSAppLogin: the service may log in as erpgate_app itself (a URL of
// its own, the migrations run with the owner's); an up-to-date schema is
// only read by Migrate, and a pending migration names the fix.
func TestRLSAppLogin(t *testing.T) {
	t.Parallel()
	d := newRLSDB(t)
	ctx := context.Background()
	u, err := url.Parse(d.url)
	must(t, err)
	u.User = url.User(AppRole)
	cfg, err := pgxpool.ParseConfig(u.String())
	must(t, err)
	ConfigurePool(cfg)
	app, err := pgxpool.NewWithConfig(ctx, cfg)
	must(t, err)
	defer app.Close()
	if applied, err := Migrate(ctx, app); err != nil || len(applied) != 0 {
		t.Fatalf("Migrate as %s on an up-to-date schema: %v, %v", AppRole, applied, err)
	}
	var session string
	must(t, app.QueryRow(ctx, `SELECT session_user`).Scan(&session))
	if session != AppRole {
		t.Fatalf("session user %s, want %s", session, AppRole)
	}
	// Logged in as the app's role, there is no role to go back to.
	for _, q := range []string{`SET ROLE erpgate_owner`, `SET ROLE postgres`} {
		if _, err := app.Exec(ctx, q); pgCode(err) != "42501" {
			t.Errorf("%s as %s: %v, want a permission error", q, AppRole, err)
		}
	}
	p := NewPostgres(app)
	keys, err := p.ListAPIKeys(ctx, d.a)
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListAPIKeys(a) as %s: %d keys, %v", AppRole, len(keys), err)
	}
	if _, _, err := p.ListCompanies(ctx, Page{Limit: 10}); err != nil {
		t.Fatalf("a platform listing as %s: %v", AppRole, err)
	}
	// A pending migration: the app's role may not apply it.
	_, err = d.owner.Exec(ctx, `DELETE FROM erpgate_schema_migrations WHERE version = $1`, rlsVersion)
	must(t, err)
	if _, err := Migrate(ctx, app); err == nil || !strings.Contains(err.Error(), "gateway erp migrate") {
		t.Fatalf("Migrate as %s with a pending migration: %v, want an error naming `gateway erp migrate`", AppRole, err)
	}
}

var errRollback = errors.New("rollback")

// BenchmarkRLSScopedRead: the per-request reads of a company's rows, each
// one round trip with its scope (BEGIN, set_config, the query, COMMIT
// pipelined): an API key by prefix (the lookup scope) and a user's access
// to a company (the company scope).
func BenchmarkRLSScopedRead(b *testing.B) {
	d := newRLSDB(b)
	p := NewPostgres(d.app)
	ctx := context.Background()
	b.Run("find-api-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.FindAPIKey(ctx, "erp_"+d.a); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same query as a bare statement (the owner's pool, no scope, no
	// transaction), as FindAPIKey ran before row-level security.
	b.Run("find-api-key-unscoped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := scanAPIKey(d.owner.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`, "erp_"+d.a)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-access", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.GetAccess(ctx, d.userA, d.a); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
