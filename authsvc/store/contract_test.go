package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	runContract(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestPostgresContract(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	store.ConfigurePool(cfg) // the store runs as erpgate_app, under row-level security
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("first migrate applied nothing")
	}
	again, err := store.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate: applied %v, err %v", again, err)
	}
	// One schema for every subtest: each creates its own rows (fresh ids).
	runContract(t, func(t *testing.T) store.Store { return store.NewPostgres(pool) })
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	total := make(chan int, 4)
	for range 4 {
		wg.Go(func() {
			v, err := store.Migrate(ctx, pool)
			if err != nil {
				t.Error(err)
			}
			total <- len(v)
		})
	}
	wg.Wait()
	close(total)
	sum := 0
	for n := range total {
		sum += n
	}
	if want := store.MigrationCount(); sum != want || want == 0 {
		t.Fatalf("migrations applied %d times in all, want %d (each once)", sum, want)
	}
}

// TestMigrateWaitsForPreviousRunner: the runner of earlier versions held the
// advisory lock "erpgate1" for its whole session while it migrated; an
// instance of this version starting beside it (a rolling upgrade) waits for
// that lock before it looks at the schema, then applies each migration once.
func TestMigrateWaitsForPreviousRunner(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	const previousRunnerLock = 0x6572706761746531 // "erpgate1", as the previous runner took it
	must(t, exec(ctx, old, `SELECT pg_advisory_lock($1)`, int64(previousRunnerLock)))
	type result struct {
		applied []int
		err     error
	}
	done := make(chan result, 1)
	go func() {
		v, err := store.Migrate(ctx, pool)
		done <- result{v, err}
	}()
	for waiting := 0; waiting == 0; {
		if err := old.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			t.Fatalf("Migrate returned while the previous runner held the lock: %v, %v", r.applied, r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	var table *string
	must(t, old.QueryRow(ctx, `SELECT to_regclass('erpgate_schema_migrations')::text`).Scan(&table))
	if table != nil {
		t.Fatalf("the schema was touched while the previous runner held the lock")
	}
	must(t, exec(ctx, old, `SELECT pg_advisory_unlock($1)`, int64(previousRunnerLock)))
	r := <-done
	if r.err != nil || len(r.applied) != store.MigrationCount() {
		t.Fatalf("Migrate after the lock: applied %v, err %v", r.applied, r.err)
	}
	again, err := store.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate: applied %v, err %v", again, err)
	}
}

func exec(ctx context.Context, c *pgxpool.Conn, sql string, args ...any) error {
	_, err := c.Exec(ctx, sql, args...)
	return err
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func hash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s := sha256.Sum256(b)
	return s[:]
}

type fixture struct {
	a, b  store.Company
	alice store.User // member of a (admin) only
	bob   store.User // member of b only
}

func setup(t *testing.T, s store.Store) fixture {
	t.Helper()
	ctx := context.Background()
	suffix := uuid.NewString()[:8]
	f := fixture{
		a:     store.Company{ID: "a-" + suffix, Name: "A", Plan: "standard", CreatedAt: t0},
		b:     store.Company{ID: "b-" + suffix, Name: "B", Plan: "free", CreatedAt: t0},
		alice: store.User{ID: uuid.NewString(), Email: "alice-" + suffix + "@a.test", Name: "Alice", PasswordHash: "h1", PasswordChangedAt: t0, CreatedAt: t0},
		bob:   store.User{ID: uuid.NewString(), Email: "bob-" + suffix + "@b.test", PasswordHash: "h2", PasswordChangedAt: t0, CreatedAt: t0},
	}
	for _, c := range []store.Company{f.a, f.b} {
		if err := s.CreateCompany(ctx, c, ev("test")); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []store.User{f.alice, f.bob} {
		if err := s.CreateUser(ctx, u, ev("test")); err != nil {
			t.Fatal(err)
		}
	}
	put(t, s, store.Membership{UserID: f.alice.ID, CompanyID: f.a.ID, Roles: []string{"admin"}, CreatedAt: t0})
	put(t, s, store.Membership{UserID: f.bob.ID, CompanyID: f.b.ID, Roles: []string{"viewer"}, CreatedAt: t0})
	return f
}

func ev(typ string) store.Event {
	return store.Event{Time: t0, Type: typ, IP: "192.0.2.1", UserAgent: "contract", RequestID: uuid.NewString()}
}

func put(t *testing.T, s store.Store, m store.Membership) {
	t.Helper()
	_, err := s.PutMembership(context.Background(), m, t0, ev("test"))
	must(t, err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func newSession(t *testing.T, s store.Store, u store.User, company string) (store.Session, []byte) {
	t.Helper()
	sess := store.Session{ID: uuid.NewString(), UserID: u.ID, CompanyID: company, CreatedAt: t0, LastUsedAt: t0,
		ExpiresAt: t0.Add(7 * 24 * time.Hour), UserAgent: "ua", IP: "192.0.2.1"}
	h := hash()
	must(t, s.CreateSession(context.Background(), sess, store.RefreshToken{Hash: h, ExpiresAt: t0.Add(24 * time.Hour)}, ev("test")))
	return sess, h
}

func runContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	runAccountContract(t, open)
	runLoginNameContract(t, open)
	runRevocationContract(t, open)
	runRefusalContract(t, open)
	runDeviceContract(t, open)
	runSSOContract(t, open)
	runWebAuthnContract(t, open)
	runFactorContract(t, open)
	runCellContract(t, open)

	t.Run("companies and users", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		c, err := s.GetCompany(ctx, f.a.ID)
		must(t, err)
		if c != f.a {
			t.Fatalf("company = %+v, want %+v", c, f.a)
		}
		wantErr(t, s.CreateCompany(ctx, f.a, ev("test")), store.ErrConflict)
		_, err = s.GetCompany(ctx, "nope-"+f.a.ID)
		wantErr(t, err, store.ErrNotFound)
		u, err := s.GetUserByEmail(ctx, f.alice.Email)
		must(t, err)
		if u != f.alice {
			t.Fatalf("user = %+v, want %+v", u, f.alice)
		}
		u, err = s.GetUser(ctx, f.alice.ID)
		must(t, err)
		if u.Email != f.alice.Email {
			t.Fatalf("GetUser email = %q", u.Email)
		}
		dup := f.bob
		dup.ID = uuid.NewString()
		wantErr(t, s.CreateUser(ctx, dup, ev("test")), store.ErrConflict)
		_, err = s.GetUser(ctx, "not-a-uuid")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetUserByEmail(ctx, "nobody@x.test")
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("access", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		a, err := s.GetAccess(ctx, f.alice.ID, f.a.ID)
		must(t, err)
		if a.Company != f.a || !slices.Equal(a.Roles, []string{"admin"}) || a.UserDisabled {
			t.Fatalf("access = %+v", a)
		}
		t.Run("other company", func(t *testing.T) {
			_, err := s.GetAccess(ctx, f.alice.ID, f.b.ID)
			wantErr(t, err, store.ErrNotFound)
			_, err = s.DeleteMembership(ctx, f.alice.ID, f.b.ID, t0, ev("test"))
			wantErr(t, err, store.ErrNotFound)
		})
		ms, err := s.ListMemberships(ctx, f.alice.ID)
		must(t, err)
		if len(ms) != 1 || ms[0].Company.ID != f.a.ID {
			t.Fatalf("memberships = %+v", ms)
		}
		put(t, s, store.Membership{UserID: f.alice.ID, CompanyID: f.a.ID, Roles: []string{"viewer", "sales"}, CreatedAt: t0})
		a, err = s.GetAccess(ctx, f.alice.ID, f.a.ID)
		must(t, err)
		if !slices.Equal(a.Roles, []string{"viewer", "sales"}) {
			t.Fatalf("roles after put = %v", a.Roles)
		}
		_, err = s.PutMembership(ctx, store.Membership{UserID: f.alice.ID, CompanyID: "missing", Roles: []string{"viewer"}, CreatedAt: t0}, t0, ev("test"))
		wantErr(t, err, store.ErrNotFound)
		_, err = s.DeleteMembership(ctx, f.alice.ID, f.a.ID, t0, ev("test"))
		must(t, err)
		_, err = s.GetAccess(ctx, f.alice.ID, f.a.ID)
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("refresh rotation", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		sess, h1 := newSession(t, s, f.alice, f.a.ID)
		h2 := hash()
		use := store.Use{Now: t0.Add(time.Minute), IP: "192.0.2.9", UserAgent: "ua2"}
		r, err := s.RotateRefreshToken(ctx, h1, store.RefreshToken{Hash: h2, ExpiresAt: t0.Add(25 * time.Hour)}, use, ev("test"))
		must(t, err)
		if r.Session.ID != sess.ID || !r.Member || r.Access.Company.ID != f.a.ID || !slices.Equal(r.Access.Roles, []string{"admin"}) {
			t.Fatalf("rotate = %+v", r)
		}
		if r.Session.IP != "192.0.2.9" || r.Session.UserAgent != "ua2" || !r.Session.LastUsedAt.Equal(use.Now) {
			t.Fatalf("use not recorded: %+v", r.Session)
		}
		// unknown token
		_, err = s.RotateRefreshToken(ctx, hash(), store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		wantErr(t, err, store.ErrNotFound)
		// reuse of h1 revokes the family: h2 is dead too
		r, err = s.RotateRefreshToken(ctx, h1, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		wantErr(t, err, store.ErrRefreshReused)
		if r.Session.ID != sess.ID || r.Session.RevokeReason != "refresh_reuse" {
			t.Fatalf("reuse result = %+v", r.Session)
		}
		_, err = s.RotateRefreshToken(ctx, h2, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		wantErr(t, err, store.ErrSessionInactive)
		got, err := s.GetSession(ctx, f.alice.ID, sess.ID)
		must(t, err)
		if got.Active(use.Now) {
			t.Fatal("session still active after reuse")
		}
	})

	t.Run("refresh expiry and removed member", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		_, h1 := newSession(t, s, f.alice, f.a.ID)
		late := store.Use{Now: t0.Add(24*time.Hour + time.Second)}
		_, err := s.RotateRefreshToken(ctx, h1, store.RefreshToken{Hash: hash(), ExpiresAt: late.Now.Add(time.Hour)}, late, ev("test"))
		wantErr(t, err, store.ErrSessionInactive)

		// Removing a membership ends the sessions bound to the company.
		_, h2 := newSession(t, s, f.alice, f.a.ID)
		_, err = s.DeleteMembership(ctx, f.alice.ID, f.a.ID, t0, ev("test"))
		must(t, err)
		_, err = s.RotateRefreshToken(ctx, h2, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(2 * time.Hour)}, store.Use{Now: t0.Add(time.Minute)}, ev("test"))
		wantErr(t, err, store.ErrSessionInactive)
		// A session in a company without membership (a platform admin's) rotates with Member false.
		admin := true
		_, _, err = s.UpdateUser(ctx, f.alice.ID, store.UserUpdate{PlatformAdmin: &admin}, t0, ev("test"))
		must(t, err)
		sb, _ := newSession(t, s, f.alice, f.b.ID)
		hb := hash()
		sw, err := s.SwitchCompany(ctx, f.alice.ID, sb.ID, f.a.ID, store.RefreshToken{Hash: hb, ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0}, ev("test"))
		must(t, err)
		if sw.Member || !sw.PlatformAdmin || len(sw.Access.Roles) != 0 || sw.Access.Company.ID != f.a.ID || sw.Session.CompanyID != f.a.ID {
			t.Fatalf("platform admin's switch = %+v", sw)
		}
		r, err := s.RotateRefreshToken(ctx, hb, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(2 * time.Hour)}, store.Use{Now: t0.Add(time.Minute)}, ev("test"))
		must(t, err)
		if r.Member || len(r.Access.Roles) != 0 || r.Session.CompanyID != f.a.ID {
			t.Fatalf("non-member has access: %+v", r)
		}
		// The family's absolute expiry caps the next token.
		_, h3 := newSession(t, s, f.bob, f.b.ID)
		h4 := hash()
		_, err = s.RotateRefreshToken(ctx, h3, store.RefreshToken{Hash: h4, ExpiresAt: t0.Add(30 * 24 * time.Hour)}, store.Use{Now: t0.Add(time.Minute)}, ev("test"))
		must(t, err)
		_, err = s.RotateRefreshToken(ctx, h4, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(30 * 24 * time.Hour)}, store.Use{Now: t0.Add(7*24*time.Hour + time.Second)}, ev("test"))
		wantErr(t, err, store.ErrSessionInactive)
	})

	t.Run("parallel rotation", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		_, h := newSession(t, s, f.alice, f.a.ID)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, reused := 0, 0
		for range 20 {
			wg.Go(func() {
				_, err := s.RotateRefreshToken(ctx, h, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0.Add(time.Minute)}, ev("test"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrRefreshReused):
					reused++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok != 1 || reused != 19 {
			t.Fatalf("parallel rotation: %d succeeded, %d reused; want 1 and 19", ok, reused)
		}
	})

	t.Run("switch company", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		put(t, s, store.Membership{UserID: f.alice.ID, CompanyID: f.b.ID, Roles: []string{"viewer"}, CreatedAt: t0})
		sess, h1 := newSession(t, s, f.alice, f.a.ID)
		h2 := hash()
		use := store.Use{Now: t0.Add(time.Minute), IP: "192.0.2.7", UserAgent: "ua3"}
		res, err := s.SwitchCompany(ctx, f.alice.ID, sess.ID, f.b.ID, store.RefreshToken{Hash: h2, ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		must(t, err)
		got := res.Session
		if got.CompanyID != f.b.ID || got.ID != sess.ID || got.UserID != f.alice.ID || got.IP != "192.0.2.7" || got.UserAgent != "ua3" ||
			!got.LastUsedAt.Equal(use.Now) || !got.ExpiresAt.Equal(sess.ExpiresAt) || !got.CreatedAt.Equal(sess.CreatedAt) || !got.Active(use.Now) {
			t.Fatalf("switched session = %+v", got)
		}
		if !res.Member || res.Access.UserID != f.alice.ID || res.Access.UserDisabled || res.Access.Company.ID != f.b.ID ||
			res.Access.Company.Plan != "free" || !slices.Equal(res.Access.Roles, []string{"viewer"}) {
			t.Fatalf("access read by the switch = %+v", res)
		}
		if stored, err := s.GetSession(ctx, f.alice.ID, sess.ID); err != nil || stored != got {
			t.Fatalf("stored session = %+v, %v; switch returned %+v", stored, err, got)
		}
		// the old refresh token is consumed (its reuse would revoke the family), the new one works
		r, err := s.RotateRefreshToken(ctx, h2, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		must(t, err)
		if r.Access.Company.ID != f.b.ID {
			t.Fatalf("refresh after switch is for %q", r.Access.Company.ID)
		}
		_, err = s.RotateRefreshToken(ctx, h1, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		wantErr(t, err, store.ErrRefreshReused)

		t.Run("other company", func(t *testing.T) {
			sess, _ := newSession(t, s, f.bob, f.b.ID)
			r, err := s.SwitchCompany(ctx, f.bob.ID, sess.ID, f.a.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
			wantErr(t, err, store.ErrNoAccess)
			if r.Member || r.PlatformAdmin || r.Session.ID != "" {
				t.Fatalf("refused switch = %+v", r)
			}
		})
		t.Run("other user", func(t *testing.T) {
			sess, _ := newSession(t, s, f.bob, f.b.ID)
			_, err := s.SwitchCompany(ctx, f.alice.ID, sess.ID, f.b.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
			wantErr(t, err, store.ErrNotFound)
		})
		t.Run("ended session", func(t *testing.T) {
			sess, _ := newSession(t, s, f.alice, f.a.ID)
			must(t, s.RevokeSession(ctx, f.alice.ID, sess.ID, t0, "logout", ev("test")))
			_, err := s.SwitchCompany(ctx, f.alice.ID, sess.ID, f.b.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
			wantErr(t, err, store.ErrNotFound)
			_, err = s.SwitchCompany(ctx, f.alice.ID, "not-a-session", f.b.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
			wantErr(t, err, store.ErrNotFound)
		})
	})

	t.Run("switch company refusals", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		put(t, s, store.Membership{UserID: f.alice.ID, CompanyID: f.b.ID, Roles: []string{"viewer"}, CreatedAt: t0})
		sess, h1 := newSession(t, s, f.alice, f.a.ID)
		use := store.Use{Now: t0.Add(time.Minute)}
		refusals := func() int64 {
			_, n, err := s.ListAudit(ctx, store.AuditFilter{Types: []string{"switch.refused"}}, store.Page{Limit: 1})
			must(t, err)
			return n
		}
		try := func(company string) (store.SwitchResult, error) {
			return s.SwitchCompany(ctx, f.alice.ID, sess.ID, company, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("switch.refused"))
		}
		r, err := try("missing-" + f.b.ID)
		wantErr(t, err, store.ErrNoAccess)
		if r.Access.Company.ID != "" {
			t.Fatalf("missing company read as %+v", r.Access.Company)
		}
		off := true
		_, _, err = s.UpdateCompany(ctx, f.b.ID, store.CompanyUpdate{Disabled: &off}, t0, ev("test"))
		must(t, err)
		r, err = try(f.b.ID)
		wantErr(t, err, store.ErrNoAccess)
		if !r.Member || !r.Access.Company.Disabled || r.Access.UserDisabled {
			t.Fatalf("disabled company read as %+v", r)
		}
		// A refusal changes nothing: the session stays, its refresh token is not consumed.
		if got, err := s.GetSession(ctx, f.alice.ID, sess.ID); err != nil || got.CompanyID != f.a.ID || !got.LastUsedAt.Equal(t0) {
			t.Fatalf("session after refused switches = %+v, %v", got, err)
		}
		_, err = s.RotateRefreshToken(ctx, h1, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		must(t, err)
		// A disabled user is refused, platform admin or not.
		admin := true
		_, _, err = s.UpdateUser(ctx, f.alice.ID, store.UserUpdate{PlatformAdmin: &admin}, t0, ev("test"))
		must(t, err)
		_, _, err = s.UpdateUser(ctx, f.alice.ID, store.UserUpdate{Disabled: &off}, t0, ev("test"))
		must(t, err)
		r, err = try(f.a.ID)
		wantErr(t, err, store.ErrNoAccess)
		if !r.Access.UserDisabled || !r.PlatformAdmin {
			t.Fatalf("disabled user read as %+v", r)
		}
		if n := refusals(); n != 0 {
			t.Fatalf("%d refused switches recorded", n)
		}
		_, err = s.SwitchCompany(ctx, uuid.NewString(), sess.ID, f.a.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, use, ev("test"))
		wantErr(t, err, store.ErrNoAccess)
	})

	t.Run("sessions", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		s1, _ := newSession(t, s, f.alice, f.a.ID)
		s2, h2 := newSession(t, s, f.alice, f.a.ID)
		sb, _ := newSession(t, s, f.bob, f.b.ID)
		_, err := s.RotateRefreshToken(ctx, h2, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0.Add(time.Minute)}, ev("test"))
		must(t, err)
		list, err := s.ListSessions(ctx, f.alice.ID, t0.Add(2*time.Minute))
		must(t, err)
		if len(list) != 2 || list[0].ID != s2.ID || list[1].ID != s1.ID {
			t.Fatalf("sessions = %+v", list)
		}
		t.Run("other user", func(t *testing.T) {
			_, err := s.GetSession(ctx, f.alice.ID, sb.ID)
			wantErr(t, err, store.ErrNotFound)
			wantErr(t, s.RevokeSession(ctx, f.alice.ID, sb.ID, t0, "x", ev("test")), store.ErrNotFound)
			got, err := s.GetSession(ctx, f.bob.ID, sb.ID)
			must(t, err)
			if !got.Active(t0.Add(time.Minute)) {
				t.Fatal("bob's session was revoked by alice")
			}
		})
		must(t, s.RevokeSession(ctx, f.alice.ID, s1.ID, t0.Add(3*time.Minute), "logout", ev("test")))
		wantErr(t, s.RevokeSession(ctx, f.alice.ID, s1.ID, t0.Add(3*time.Minute), "logout", ev("test")), store.ErrNotFound)
		list, err = s.ListSessions(ctx, f.alice.ID, t0.Add(4*time.Minute))
		must(t, err)
		if len(list) != 1 || list[0].ID != s2.ID {
			t.Fatalf("sessions after revoke = %+v", list)
		}
		ids, err := s.RevokeUserSessions(ctx, f.alice.ID, t0.Add(5*time.Minute), "logout_all", ev("test"))
		must(t, err)
		if len(ids) != 1 || ids[0] != s2.ID {
			t.Fatalf("logout all revoked %v", ids)
		}
		list, _ = s.ListSessions(ctx, f.alice.ID, t0.Add(6*time.Minute))
		if len(list) != 0 {
			t.Fatalf("sessions after logout all = %+v", list)
		}
		if got, _ := s.GetSession(ctx, f.bob.ID, sb.ID); !got.Active(t0.Add(6 * time.Minute)) {
			t.Fatal("logout all of alice revoked bob's session")
		}
	})

	t.Run("password change and disable revoke sessions", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		s1, _ := newSession(t, s, f.alice, f.a.ID)
		ids, err := s.SetPasswordHash(ctx, f.alice.ID, "new-hash", "", t0.Add(time.Minute), ev("test"))
		must(t, err)
		if !slices.Equal(ids, []string{s1.ID}) {
			t.Fatalf("password change revoked %v", ids)
		}
		u, _ := s.GetUser(ctx, f.alice.ID)
		if u.PasswordHash != "new-hash" {
			t.Fatal("hash not replaced")
		}
		s2, h2 := newSession(t, s, f.alice, f.a.ID)
		disabled := true
		_, ids, err = s.UpdateUser(ctx, f.alice.ID, store.UserUpdate{Disabled: &disabled}, t0.Add(2*time.Minute), ev("test"))
		must(t, err)
		if !slices.Equal(ids, []string{s2.ID}) {
			t.Fatalf("disable revoked %v", ids)
		}
		_, err = s.RotateRefreshToken(ctx, h2, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0.Add(3 * time.Minute)}, ev("test"))
		wantErr(t, err, store.ErrSessionInactive)
		a, err := s.GetAccess(ctx, f.alice.ID, f.a.ID)
		must(t, err)
		if !a.UserDisabled {
			t.Fatal("access does not show the user disabled")
		}
		_, err = s.SetPasswordHash(ctx, uuid.NewString(), "x", "", t0, ev("test"))
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("api keys", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		k := store.APIKey{ID: uuid.NewString(), CompanyID: f.a.ID, Name: "ci", Prefix: "p" + uuid.NewString()[:8], SecretHash: hash(),
			Scope: []string{"invoices:read"}, Plan: "standard", CreatedBy: f.alice.ID, CreatedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)}
		must(t, s.CreateAPIKey(ctx, k, ev("test")))
		dup := k
		dup.ID = uuid.NewString()
		wantErr(t, s.CreateAPIKey(ctx, dup, ev("test")), store.ErrConflict)
		got, err := s.GetAPIKey(ctx, f.a.ID, k.ID)
		must(t, err)
		if got.Prefix != k.Prefix || !bytes.Equal(got.SecretHash, k.SecretHash) || !got.ExpiresAt.Equal(k.ExpiresAt) || !slices.Equal(got.Scope, k.Scope) {
			t.Fatalf("key = %+v", got)
		}
		found, err := s.FindAPIKey(ctx, k.Prefix)
		must(t, err)
		if found.ID != k.ID || found.CompanyID != f.a.ID {
			t.Fatalf("find = %+v", found)
		}
		_, err = s.FindAPIKey(ctx, "unknown")
		wantErr(t, err, store.ErrNotFound)

		t.Run("other company", func(t *testing.T) {
			_, err := s.GetAPIKey(ctx, f.b.ID, k.ID)
			wantErr(t, err, store.ErrNotFound)
			_, err = s.RotateAPIKey(ctx, f.b.ID, k.ID, hash(), t0.Add(time.Hour), t0, ev("test"))
			wantErr(t, err, store.ErrNotFound)
			wantErr(t, s.RevokeAPIKey(ctx, f.b.ID, k.ID, t0, ev("test")), store.ErrNotFound)
			list, err := s.ListAPIKeys(ctx, f.b.ID)
			must(t, err)
			if len(list) != 0 {
				t.Fatalf("company b lists a's keys: %+v", list)
			}
		})

		newHash := hash()
		rot, err := s.RotateAPIKey(ctx, f.a.ID, k.ID, newHash, t0.Add(time.Hour), t0.Add(time.Minute), ev("test"))
		must(t, err)
		if !bytes.Equal(rot.SecretHash, newHash) || !bytes.Equal(rot.PrevSecretHash, k.SecretHash) || !rot.PrevExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("rotated = %+v", rot)
		}
		must(t, s.RecordAPIKeyUses(ctx, []store.APIKeyUse{{ID: k.ID, Count: 3, LastUsed: t0.Add(2 * time.Minute)}}))
		must(t, s.RecordAPIKeyUses(ctx, []store.APIKeyUse{{ID: k.ID, Count: 2, LastUsed: t0.Add(time.Minute)}}))
		list, err := s.ListAPIKeys(ctx, f.a.ID)
		must(t, err)
		if len(list) != 1 || list[0].UseCount != 5 || !list[0].LastUsedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("uses = %+v", list)
		}
		must(t, s.RevokeAPIKey(ctx, f.a.ID, k.ID, t0.Add(3*time.Minute), ev("test")))
		wantErr(t, s.RevokeAPIKey(ctx, f.a.ID, k.ID, t0.Add(3*time.Minute), ev("test")), store.ErrNotFound)
		_, err = s.RotateAPIKey(ctx, f.a.ID, k.ID, hash(), t0.Add(time.Hour), t0, ev("test"))
		wantErr(t, err, store.ErrNotFound)
		got, _ = s.GetAPIKey(ctx, f.a.ID, k.ID)
		if !got.RevokedAt.Equal(t0.Add(3 * time.Minute)) {
			t.Fatalf("revoked_at = %v", got.RevokedAt)
		}
		wantErr(t, s.CreateAPIKey(ctx, store.APIKey{ID: uuid.NewString(), CompanyID: "missing", Prefix: "q" + uuid.NewString()[:8],
			SecretHash: hash(), Scope: []string{}, Plan: "free", CreatedAt: t0}, ev("test")), store.ErrNotFound)
	})

	t.Run("signing keys", func(t *testing.T) {
		s := open(t)
		for _, tc := range []struct {
			purpose, other store.KeyPurpose
			prefix         string
		}{
			{store.KeyAccess, store.KeyAssertion, "k"},
			{store.KeyAssertion, store.KeyAccess, "edge-k"},
		} {
			before, err := s.ListSigningKeys(ctx, tc.purpose)
			must(t, err)
			otherBefore, err := s.ListSigningKeys(ctx, tc.other)
			must(t, err)
			kid1, kid2 := tc.prefix+"1-"+uuid.NewString(), tc.prefix+"2-"+uuid.NewString()
			must(t, s.AddSigningKey(ctx, tc.purpose, store.SigningKey{KID: kid2, Alg: "EdDSA", PublicKey: []byte{2}, SealedPrivate: []byte{22}, CreatedAt: t0, ActivatesAt: t0.Add(time.Hour)}))
			must(t, s.AddSigningKey(ctx, tc.purpose, store.SigningKey{KID: kid1, Alg: "EdDSA", PublicKey: []byte{1}, SealedPrivate: []byte{11}, CreatedAt: t0, ActivatesAt: t0}))
			wantErr(t, s.AddSigningKey(ctx, tc.purpose, store.SigningKey{KID: kid1, Alg: "EdDSA", PublicKey: []byte{1}, SealedPrivate: []byte{1}, CreatedAt: t0, ActivatesAt: t0}), store.ErrConflict)
			// a kid of one purpose's form is refused for the other purpose
			if err := s.AddSigningKey(ctx, tc.other, store.SigningKey{KID: tc.prefix + "3-" + uuid.NewString(), Alg: "EdDSA", PublicKey: []byte{3}, SealedPrivate: []byte{33}, CreatedAt: t0, ActivatesAt: t0}); err == nil {
				t.Fatalf("%s: a kid of the %s form was stored as a %s key", tc.purpose, tc.purpose, tc.other)
			}
			ks, err := s.ListSigningKeys(ctx, tc.purpose)
			must(t, err)
			var mine []store.SigningKey
			for _, k := range ks {
				if k.KID == kid1 || k.KID == kid2 {
					mine = append(mine, k)
				}
			}
			if len(ks) != len(before)+2 || len(mine) != 2 || mine[0].KID != kid1 || !bytes.Equal(mine[1].SealedPrivate, []byte{22}) {
				t.Fatalf("%s keys = %+v", tc.purpose, ks)
			}
			// the other purpose's keys are apart
			others, err := s.ListSigningKeys(ctx, tc.other)
			must(t, err)
			if len(others) != len(otherBefore) {
				t.Fatalf("%s keys listed as %s keys: %+v", tc.purpose, tc.other, others)
			}
			wantErr(t, s.DeleteSigningKey(ctx, tc.other, kid1), store.ErrNotFound)
			must(t, s.DeleteSigningKey(ctx, tc.purpose, kid1))
			wantErr(t, s.DeleteSigningKey(ctx, tc.purpose, kid1), store.ErrNotFound)
		}
		if _, err := s.ListSigningKeys(ctx, "other"); err == nil {
			t.Fatal("listed the keys of an unknown purpose")
		}
	})
}
