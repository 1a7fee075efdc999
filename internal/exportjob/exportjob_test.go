package exportjob

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/testenv"
)

// storeContract runs against every Store: per company, bounded active
// jobs, leases, updates of deleted jobs.
func storeContract(t *testing.T, newStore func(t *testing.T, now func() time.Time) Store) {
	ctx := context.Background()
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	s := newStore(t, now)
	mk := func(company string) *Job {
		return &Job{ID: NewID(), Company: company, Backend: "invoices", Format: "csv", Status: Queued, Created: clock}
	}
	a1, a2, a3, b1 := mk("acme"), mk("acme"), mk("acme"), mk("globex")
	for _, j := range []*Job{a1, a2, b1} {
		if err := s.Create(ctx, j, 2, 30*time.Second, time.Hour); err != nil {
			t.Fatalf("create %s: %v", j.Company, err)
		}
	}
	if err := s.Create(ctx, a3, 2, 30*time.Second, time.Hour); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third active acme job: %v, want ErrTooMany", err)
	}
	// other company: none
	if _, err := s.Get(ctx, "globex", a1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("globex reads acme's job: %v", err)
	}
	if _, err := s.Delete(ctx, "globex", a1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("globex deletes acme's job: %v", err)
	}
	other := *a1
	other.Company = "globex"
	if err := s.Update(ctx, &other, 30*time.Second, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("globex updates acme's job: %v", err)
	}
	// a finished job frees its slot
	a1.Status, a1.Rows, a1.Bytes = Done, 12, 345
	if err := s.Update(ctx, a1, 30*time.Second, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "acme", a1.ID)
	if err != nil || got.Status != Done || got.Rows != 12 || got.Bytes != 345 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := s.Create(ctx, a3, 2, 30*time.Second, time.Hour); err != nil {
		t.Fatalf("after one finished: %v", err)
	}
	// a lease not renewed frees its slot (the instance died)
	clock = clock.Add(31 * time.Second)
	a4 := mk("acme")
	if err := s.Create(ctx, a4, 2, 30*time.Second, time.Hour); err != nil {
		t.Fatalf("after the leases ran out: %v", err)
	}
	// deleted: gone, and its update says so
	if j, err := s.Delete(ctx, "acme", a2.ID); err != nil || j.ID != a2.ID {
		t.Fatalf("delete: %v %v", j, err)
	}
	if err := s.Update(ctx, a2, 30*time.Second, time.Hour); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update after delete: %v", err)
	}
	if _, err := s.Get(ctx, "acme", a2.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestMemoryStore(t *testing.T) {
	storeContract(t, func(_ *testing.T, now func() time.Time) Store {
		m := NewMemory()
		m.Now = now
		return m
	})
}

func TestRedisStore(t *testing.T) {
	storeContract(t, func(t *testing.T, now func() time.Time) Store {
		url, prefix := testenv.Redis(t)
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return &Redis{Client: c, Prefix: prefix, Now: now}
	})
}

func TestLink(t *testing.T) {
	l := Link{Key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	sig := l.Sign("acme", "exp_x", exp)
	e := strconv.FormatInt(exp.Unix(), 10)
	if err := l.Check("acme", "exp_x", e, sig, now); err != nil {
		t.Fatalf("valid link: %v", err)
	}
	for name, c := range map[string][4]string{
		"other company": {"globex", "exp_x", e, sig},
		"other job":     {"acme", "exp_y", e, sig},
		"other expiry":  {"acme", "exp_x", strconv.FormatInt(exp.Unix()+1, 10), sig},
		"bad expiry":    {"acme", "exp_x", "soon", sig},
		"no signature":  {"acme", "exp_x", e, ""},
		"not base64":    {"acme", "exp_x", e, "!!"},
	} {
		if err := l.Check(c[0], c[1], c[2], c[3], now); !errors.Is(err, ErrBadLink) {
			t.Errorf("%s: %v, want ErrBadLink", name, err)
		}
	}
	if err := (Link{Key: []byte("another key of thirty-two bytes!")}).Check("acme", "exp_x", e, sig, now); !errors.Is(err, ErrBadLink) {
		t.Errorf("other key: %v", err)
	}
	if err := l.Check("acme", "exp_x", e, sig, exp); !errors.Is(err, ErrExpiredLink) {
		t.Errorf("at expiry: %v, want ErrExpiredLink", err)
	}
}

func TestIDs(t *testing.T) {
	id := NewID()
	if !ValidID(id) || id == NewID() {
		t.Fatalf("NewID %q", id)
	}
	for _, bad := range []string{"", "exp_", "exp_../../etc/passwd", "EXP_" + id[4:], id + "a", id[:len(id)-1] + "1"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func BenchmarkLinkCheck(b *testing.B) {
	l := Link{Key: []byte("0123456789abcdef0123456789abcdef")}
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(time.Minute)
	sig, e := l.Sign("acme", "exp_x", exp), strconv.FormatInt(exp.Unix(), 10)
	b.ReportAllocs()
	for b.Loop() {
		if l.Check("acme", "exp_x", e, sig, now) != nil {
			b.Fatal("refused")
		}
	}
}
