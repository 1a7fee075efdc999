package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/loginname"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// lookAlikes are names of one skeleton: "carol" with Cyrillic с, а, о and
// Greek ο in its places.
func lookAlikes(suffix, domain string) []string {
	var out []string
	for _, c := range []string{"c", "с"} {
		for _, a := range []string{"a", "а"} {
			for _, o := range []string{"o", "о", "ο"} {
				out = append(out, c+a+"r"+o+"l-"+suffix+"@"+domain)
			}
		}
	}
	return out
}

func newUser(email string) store.User {
	return store.User{ID: uuid.NewString(), Email: email, PasswordHash: "h", PasswordChangedAt: t0, CreatedAt: t0}
}

// runLoginNameContract: a store keeps one account per look-alike login name
// and finds accounts by their exact canonical name only.
func runLoginNameContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("look-alike login names", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		suffix := uuid.NewString()[:8]
		names := lookAlikes(suffix, f.a.ID+".test")
		carol := newUser(names[0])
		must(t, s.CreateUser(ctx, carol, ev("test")))
		for _, email := range names[1:] {
			wantErr(t, s.CreateUser(ctx, newUser(email), ev("test")), store.ErrConflict)
			_, err := s.GetUserByEmail(ctx, email)
			wantErr(t, err, store.ErrNotFound) // never found by its skeleton
		}
		// A look-alike domain is a look-alike name too.
		wantErr(t, s.CreateUser(ctx, newUser("carol-"+suffix+"@"+f.a.ID+".tеst"), ev("test")), store.ErrConflict)
		got, err := s.GetUserByEmail(ctx, carol.Email)
		must(t, err)
		if got.ID != carol.ID {
			t.Fatalf("GetUserByEmail(%q) = %s, want %s", carol.Email, got.ID, carol.ID)
		}
		t.Run("other tenant", func(t *testing.T) {
			// The same local part in another domain is another name.
			other := newUser("carol-" + suffix + "@" + f.b.ID + ".test")
			must(t, s.CreateUser(ctx, other, ev("test")))
			got, err := s.GetUserByEmail(ctx, other.Email)
			must(t, err)
			if got.ID != other.ID {
				t.Fatalf("GetUserByEmail(%q) = %s, want %s", other.Email, got.ID, other.ID)
			}
			if got, _ := s.GetUserByEmail(ctx, carol.Email); got.ID != carol.ID {
				t.Fatal("creating b's carol changed a's")
			}
		})
		t.Run("only canonical names are stored", func(t *testing.T) {
			for _, email := range []string{"DAVE-" + suffix + "@a.test", "ｄave-" + suffix + "@a.test", "da\u200bve-" + suffix + "@a.test", "dave-" + suffix + "@A.TEST", "da ve@a.test", ""} {
				err := s.CreateUser(ctx, newUser(email), ev("test"))
				if err == nil || errors.Is(err, store.ErrConflict) {
					t.Fatalf("CreateUser(%q): %v; want a refusal of the form", email, err)
				}
			}
			n, err := loginname.Normalize("DAVE-" + suffix + "@A.TEST")
			must(t, err)
			must(t, s.CreateUser(ctx, newUser(n.Email), ev("test")))
		})
	})

	t.Run("parallel look-alike creations", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		names := lookAlikes(uuid.NewString()[:8], f.b.ID+".test")
		var (
			wg                  sync.WaitGroup
			mu                  sync.Mutex
			created, conflicted int
			winner              string
		)
		for _, email := range names {
			wg.Go(func() {
				err := s.CreateUser(ctx, newUser(email), ev("test"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created++
					winner = email
				case errors.Is(err, store.ErrConflict):
					conflicted++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if created != 1 || conflicted != len(names)-1 {
			t.Fatalf("%d of %d look-alikes created, %d conflicts; want exactly one", created, len(names), conflicted)
		}
		for _, email := range names {
			_, err := s.GetUserByEmail(ctx, email)
			if (email == winner) != (err == nil) {
				t.Fatalf("GetUserByEmail(%q): %v (the one created is %q)", email, err, winner)
			}
		}
	})
}

// Migration 0005 gives rows stored before it their canonical names and
// skeletons, and leaves no two accounts with one name or one look.
func TestPostgresLoginNameBackfill(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := store.MigrateTo(ctx, pool, 4); err != nil {
		t.Fatal(err)
	}
	// Rows as the service stored them before: lower-cased and trimmed only.
	legacy := []struct{ key, email string }{
		{"fullwidth", "ｅve@acme.test"},          // alone: becomes eve@acme.test
		{"upper domain", "frank@acme.test"},     // already canonical
		{"alice", "alice@acme.test"},            // the original
		{"cyrillic alice", "alіce@acme.test"},   // a later look-alike
		{"zwsp alice", "ali\u200bce@acme.test"}, // a later second spelling of alice
		{"fullwidth bob", "ｂob@acme.test"},      // older than bob, but bob holds the name
		{"bob", "bob@acme.test"},
		{"space", "gr ace@acme.test"}, // no valid name any more
		{"idna", "heidi@xn--bcher-kva.example"},
	}
	ids := map[string]string{}
	for i, l := range legacy {
		id := uuid.NewString()
		ids[l.key] = id
		if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, password_changed_at, created_at) VALUES ($1, $2, 'h', $3, $3)`,
			id, l.email, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	applied, err := store.Migrate(ctx, pool)
	if err != nil || len(applied) == 0 || applied[len(applied)-1] < 5 {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	s := store.NewPostgres(pool)
	for name, wantKey := range map[string]string{
		"eve@acme.test": "fullwidth", "frank@acme.test": "upper domain", "alice@acme.test": "alice",
		"alіce@acme.test": "cyrillic alice", "bob@acme.test": "bob", "heidi@bücher.example": "idna",
	} {
		u, err := s.GetUserByEmail(ctx, name)
		if err != nil || u.ID != ids[wantKey] {
			t.Errorf("after the backfill %q is %s (%v), want the %s row", name, u.ID, err, wantKey)
		}
	}
	skeletons := map[string]string{}
	rows, err := pool.Query(ctx, `SELECT id::text, email, email_skeleton FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, email, sk string
		if err := rows.Scan(&id, &email, &sk); err != nil {
			t.Fatal(err)
		}
		skeletons[id] = sk
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, k := range []string{"cyrillic alice", "zwsp alice", "fullwidth bob", "space"} {
		if skeletons[ids[k]] != "legacy:"+ids[k] {
			t.Errorf("the %s row's key is %q, want its legacy key", k, skeletons[ids[k]])
		}
	}
	alice, _ := loginname.Normalize("alice@acme.test")
	if skeletons[ids["alice"]] != alice.Skeleton {
		t.Errorf("alice's key is %q, want %q", skeletons[ids["alice"]], alice.Skeleton)
	}
	// From now on the index refuses look-alikes of the migrated names, and
	// the column can't be left empty.
	wantErr(t, s.CreateUser(ctx, newUser("аlice@acme.test"), ev("test")), store.ErrConflict)
	wantErr(t, s.CreateUser(ctx, newUser("еve@acme.test"), ev("test")), store.ErrConflict)
	_, err = pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, password_changed_at, created_at) VALUES ($1, 'ivan@acme.test', 'h', now(), now())`, uuid.NewString())
	if err == nil {
		t.Fatal("a user without a skeleton was stored")
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil || n != len(legacy) {
		t.Fatalf("%d users after the backfill (%v), want %d: none is lost", n, err, len(legacy))
	}
}
