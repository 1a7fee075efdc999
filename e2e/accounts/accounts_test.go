// Package accounts drives login names through the running gateway binary,
// with the embedded stores and with Postgres: names are normalised (PRECIS
// for the local part, IDNA for the domain), look-alikes of an existing name
// can't be created, and a look-alike login reaches no other account.
package accounts

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// stacks are the two ways the example runs: everything in process, and
// Postgres + Redis.
var stacks = []struct {
	name string
	env  func(t *testing.T) map[string]string
}{
	{"memory", func(*testing.T) map[string]string {
		return map[string]string{"ERP_POSTGRES_URL": "", "ERP_REDIS_URL": ""}
	}},
	{"postgres", func(t *testing.T) map[string]string {
		redisURL, prefix := testenv.Redis(t)
		return map[string]string{"ERP_POSTGRES_URL": testenv.Postgres(t), "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}
	}},
}

const otherPassword = "a-new-password-1"

type loginAnswer struct {
	status  int
	code    string
	message string
	realm   string
	userID  string
	email   string
}

func login(t *testing.T, base, email, password string) loginAnswer {
	t.Helper()
	body := httpt.JSON(t, map[string]string{"email": email, "password": password})
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	for deadline := time.Now().Add(time.Minute); r.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond) // still seeding
		r = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", body, nil)
	}
	env := r.Envelope(t)
	a := loginAnswer{status: r.StatusCode, code: env.Code(), realm: r.Header.Get("WWW-Authenticate")}
	if len(env.Errors) > 0 {
		a.message = env.Errors[0].Message
	}
	var d struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
	}
	if r.StatusCode == 200 && json.Unmarshal(env.Data, &d) == nil {
		a.userID, a.email = d.User.ID, d.User.Email
	}
	return a
}

type created struct {
	status int
	code   string
	field  string
	msg    string
	id     string
	email  string
}

func createUser(t *testing.T, base, bearer, email string) created {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/admin/users", httpt.JSON(t, map[string]any{"email": email, "password": otherPassword}), demoauth.Bearer(bearer))
	env := r.Envelope(t)
	c := created{status: r.StatusCode, code: env.Code()}
	if len(env.Errors) > 0 {
		c.field, c.msg = env.Errors[0].Field, env.Errors[0].Message
	}
	var d struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	if r.StatusCode == 201 && json.Unmarshal(env.Data, &d) == nil {
		c.id, c.email = d.ID, d.Email
	}
	return c
}

func TestLookAlikeNames(t *testing.T) {
	t.Parallel()
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			in := stacktest.Start(t, stacktest.Options{Env: st.env(t)})
			lookAlikeNames(t, in.URL)
		})
	}
}

func lookAlikeNames(t *testing.T, base string) {
	alice := login(t, base, "alice@acme.test", demoauth.Password)
	if alice.status != 200 || alice.userID == "" {
		t.Fatalf("alice's login: %+v", alice)
	}
	root := demoauth.Login(t, base, "root@erpgate.local", "acme")

	t.Run("look-alikes of an existing name are refused", func(t *testing.T) {
		for _, email := range []string{
			"ａlice@acme.test",        // fullwidth a: the same name
			"alіce@acme.test",        // Cyrillic і: another name that looks the same
			"ali\u200bce@acme.test",  // zero-width space: the same name
			"ALICE@ACME.TEST",        // case
			"аlісе@acme.test",        // all-Cyrillic
			"alice@xn--cme-5cd.test", // Cyrillic а in the domain, as an A-label
			"a1ice@acme.test",        // digit one for l
		} {
			c := createUser(t, base, root.Access, email)
			if c.status != http.StatusConflict || c.code != "CONFLICT" {
				t.Errorf("create %q: %d %s %s; want 409 CONFLICT", email, c.status, c.code, c.msg)
			}
			if strings.Contains(c.msg, alice.userID) || strings.Contains(c.msg, "alice@") {
				t.Errorf("create %q: the refusal names the account: %q", email, c.msg)
			}
		}
	})

	t.Run("invalid names are refused with the field", func(t *testing.T) {
		for _, email := range []string{"@acme.test", "al ice@acme.test", "ﬁona@acme.test", "alice@acme..test", "alice", "eve\u0007@acme.test", "aعلي@acme.test", "\u200b@acme.test"} {
			c := createUser(t, base, root.Access, email)
			if c.status != http.StatusUnprocessableEntity || c.code != "VALIDATION_FAILED" || c.field != "email" || c.msg == "" {
				t.Errorf("create %q: %d %s field %q %q; want VALIDATION_FAILED on email", email, c.status, c.code, c.field, c.msg)
			}
		}
	})

	t.Run("a look-alike login reaches no account", func(t *testing.T) {
		unknown := login(t, base, "nobody-"+uuid.NewString()[:8]+"@acme.test", demoauth.Password)
		wrong := login(t, base, "alice@acme.test", "not-the-password")
		for _, email := range []string{"alіce@acme.test", "аlісе@acme.test", "alice@xn--cme-5cd.test", "alice@аcme.test"} {
			got := login(t, base, email, demoauth.Password)
			if got.status != 401 || got.userID != "" {
				t.Fatalf("login %q with alice's password: %+v", email, got)
			}
			for _, same := range []loginAnswer{unknown, wrong} {
				if got.status != same.status || got.code != same.code || got.message != same.message || got.realm != same.realm {
					t.Errorf("login %q: %+v; an unknown user and a wrong password get %+v", email, got, same)
				}
			}
		}
	})

	t.Run("the same name in another form is the same account", func(t *testing.T) {
		for _, email := range []string{"ALICE@ACME.TEST", "Alice@Acme.Test", " alice@acme.test ", "ａlice@acme.test", "ali\u200bce@acme.test"} {
			got := login(t, base, email, demoauth.Password)
			if got.status != 200 || got.userID != alice.userID || got.email != "alice@acme.test" {
				t.Errorf("login %q: %+v; want alice's account (%s)", email, got, alice.userID)
			}
		}
	})

	t.Run("internationalised names", func(t *testing.T) {
		c := createUser(t, base, root.Access, "JÖRG@Bücher.Example")
		if c.status != 201 || c.email != "jörg@bücher.example" {
			t.Fatalf("create JÖRG@Bücher.Example: %+v", c)
		}
		for _, email := range []string{"jörg@xn--bcher-kva.example", "JO\u0308RG@BÜCHER.EXAMPLE"} {
			if got := createUser(t, base, root.Access, email); got.status != 409 {
				t.Errorf("create %q: %+v; want 409", email, got)
			}
			if got := login(t, base, email, otherPassword); got.status != 200 || got.userID != c.id {
				t.Errorf("login %q: %+v; want %s", email, got, c.id)
			}
		}
		// Memberships name users by email too: the same rules.
		r := httpt.Do(t, http.MethodPut, base+"/api/v1/admin/memberships/globex/JÖRG@XN--BCHER-KVA.EXAMPLE", httpt.JSON(t, map[string]any{"roles": []string{"viewer"}}), demoauth.Bearer(root.Access))
		var m struct {
			UserID string `json:"user_id"`
		}
		if env := r.Envelope(t); r.StatusCode != 201 || json.Unmarshal(env.Data, &m) != nil || m.UserID != c.id {
			t.Fatalf("membership by A-label email: %d %s", r.StatusCode, r.Body)
		}
		r = httpt.Do(t, http.MethodPut, base+"/api/v1/admin/memberships/globex/al%D1%96ce@acme.test", httpt.JSON(t, map[string]any{"roles": []string{"viewer"}}), demoauth.Bearer(root.Access))
		if r.StatusCode != 404 {
			t.Fatalf("membership for a look-alike of alice: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("parallel look-alike creations: one wins", func(t *testing.T) {
		var names []string
		for _, c := range []string{"c", "с"} {
			for _, a := range []string{"a", "а"} {
				for _, o := range []string{"o", "о"} {
					names = append(names, c+a+"r"+o+"l@acme.test")
				}
			}
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []string
			refused int
		)
		for _, email := range names {
			wg.Go(func() {
				c := createUser(t, base, root.Access, email)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case c.status == 201:
					won = append(won, c.email)
				case c.status == 409 && c.code == "CONFLICT":
					refused++
				default:
					t.Errorf("create %q: %+v", email, c)
				}
			})
		}
		wg.Wait()
		if len(won) != 1 || refused != len(names)-1 {
			t.Fatalf("of %d look-alikes created at once, %v were created and %d refused; want exactly one", len(names), won, refused)
		}
	})
}

// An upgraded database: names stored before normalisation get their
// canonical form and look-alike key at start-up (migration 0005), and keep
// reaching their own accounts only.
func TestNamesStoredBeforeUpgrade(t *testing.T) {
	t.Parallel()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.MigrateTo(ctx, pool, 4); err != nil {
		t.Fatal(err)
	}
	h, err := authsvc.NewArgon2idParams(1, 1024, 1, 1).Hash(ctx, otherPassword)
	if err != nil {
		t.Fatal(err)
	}
	// As the service stored them before: lower-cased and trimmed only.
	ids := map[string]string{}
	for i, email := range []string{"ｅve@acme.test", "carol@acme.test", "cаrol@acme.test", "ca\u200brol@acme.test"} {
		ids[email] = uuid.NewString()
		if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, password_hash, password_changed_at, created_at) VALUES ($1, $2, $3, $4, $4)`,
			ids[email], email, h, time.Now().Add(time.Duration(i-10)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close()

	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}})
	for email, owner := range map[string]string{
		"eve@acme.test":         "ｅve@acme.test",   // the full-width name is now eve's canonical one
		"ＥＶＥ@acme.test":         "ｅve@acme.test",   // and any form of it
		"carol@acme.test":       "carol@acme.test", // the original
		"ca\u200brol@acme.test": "carol@acme.test", // a second spelling of carol is carol
		"cаrol@acme.test":       "cаrol@acme.test", // the look-alike stored before reaches itself only
	} {
		if got := login(t, in.URL, email, otherPassword); got.status != 200 || got.userID != ids[owner] {
			t.Errorf("login %q: %+v; want the account stored as %q (%s)", email, got, owner, ids[owner])
		}
	}
	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme")
	for _, email := range []string{"еve@acme.test", "cαrol@acme.test", "ｃarol@acme.test"} {
		if c := createUser(t, in.URL, root.Access, email); c.status != 409 {
			t.Errorf("create %q after the upgrade: %+v; want 409", email, c)
		}
	}
}
