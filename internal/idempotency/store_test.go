package idempotency

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/testenv"
)

func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{
		"":                          false,
		"a":                         true,
		`"8e03978e-40d5-43e8-bc93"`: true,
		strings.Repeat("k", 255):    true,
		strings.Repeat("k", 256):    false,
		"tab\there":                 false,
		"é":                         false,
		"with space ~":              true,
	} {
		if got := ValidKey(k); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint("POST", "/api/v1/invoices", []byte(`{"x":1}`))
	if len(a) != 64 {
		t.Fatalf("len %d", len(a))
	}
	if a != Fingerprint("POST", "/api/v1/invoices", []byte(`{"x":1}`)) {
		t.Fatal("not deterministic")
	}
	for _, b := range []string{
		Fingerprint("PATCH", "/api/v1/invoices", []byte(`{"x":1}`)),
		Fingerprint("POST", "/api/v1/customers", []byte(`{"x":1}`)),
		Fingerprint("POST", "/api/v1/invoices", []byte(`{"x":2}`)),
		// the separators keep method and path apart
		Fingerprint("POS", "T/api/v1/invoices", []byte(`{"x":1}`)),
	} {
		if a == b {
			t.Fatal("different requests, same fingerprint")
		}
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func rec(body string) *Record {
	return &Record{Status: 201, Header: http.Header{"Content-Type": {"application/json"}, "Location": {"/x/1"}}, Body: []byte(body)}
}

// storeContract runs the behaviour every store must have.
func storeContract(t *testing.T, s Store, prefix string) {
	ctx := context.Background()
	fp := Fingerprint("POST", "/p", []byte("a"))
	fp2 := Fingerprint("POST", "/p", []byte("b"))
	key := prefix + "acme:k1"

	r, err := s.Begin(ctx, key, fp)
	if err != nil || r.State != Started || r.Token == "" {
		t.Fatalf("first Begin: %+v %v", r, err)
	}
	tok := r.Token
	if r, err := s.Begin(ctx, key, fp); err != nil || r.State != InFlight {
		t.Fatalf("while in flight: %+v %v", r, err)
	}
	if r, err := s.Begin(ctx, key, fp2); err != nil || r.State != Mismatch {
		t.Fatalf("other body while in flight: %+v %v", r, err)
	}
	if err := s.Complete(ctx, key, "wrong"+tok, rec("x")); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("Complete by a non-holder: %v", err)
	}
	if err := s.Complete(ctx, key, tok, rec(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	r, err = s.Begin(ctx, key, fp)
	if err != nil || r.State != Replay {
		t.Fatalf("after Complete: %+v %v", r, err)
	}
	if r.Record.Status != 201 || string(r.Record.Body) != `{"id":1}` || r.Record.Header.Get("Location") != "/x/1" {
		t.Fatalf("replayed %+v", r.Record)
	}
	if r, err := s.Begin(ctx, key, fp2); err != nil || r.State != Mismatch {
		t.Fatalf("other body after Complete: %+v %v", r, err)
	}
	// another company's same key is another key
	if r, err := s.Begin(ctx, prefix+"globex:k1", fp); err != nil || r.State != Started {
		t.Fatalf("other company: %+v %v", r, err)
	}

	// Release frees the key for a retry
	key2 := prefix + "acme:k2"
	r, _ = s.Begin(ctx, key2, fp)
	if err := s.Release(ctx, key2, r.Token); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, key2, r.Token); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("second Release: %v", err)
	}
	if r, err := s.Begin(ctx, key2, fp2); err != nil || r.State != Started {
		t.Fatalf("after Release: %+v %v", r, err)
	}
}

func TestMemoryContract(t *testing.T) {
	storeContract(t, NewMemory(time.Hour, time.Minute, 1<<20, nil), "")
}

func TestRedisContract(t *testing.T) {
	rdb, prefix := testenv.RedisClient(t)
	storeContract(t, NewRedis(rdb, prefix+"idem:", time.Hour, time.Minute), "")
}

func TestMemoryExpiry(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := NewMemory(24*time.Hour, time.Minute, 1<<20, c.now)
	ctx := context.Background()
	fp := Fingerprint("POST", "/p", nil)
	r, _ := s.Begin(ctx, "k", fp)
	// a lock whose lease ended (its holder crashed) is free again
	c.add(time.Minute)
	r2, _ := s.Begin(ctx, "k", fp)
	if r2.State != Started {
		t.Fatalf("after the lease: %+v", r2)
	}
	if err := s.Complete(ctx, "k", r.Token, rec("old")); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("the expired holder completed: %v", err)
	}
	if err := s.Complete(ctx, "k", r2.Token, rec("new")); err != nil {
		t.Fatal(err)
	}
	c.add(24*time.Hour - time.Second)
	if r, _ := s.Begin(ctx, "k", fp); r.State != Replay || string(r.Record.Body) != "new" {
		t.Fatalf("within retention: %+v", r)
	}
	c.add(time.Second)
	if r, _ := s.Begin(ctx, "k", fp); r.State != Started {
		t.Fatalf("after retention: %+v", r)
	}
}

func TestRedisExpiry(t *testing.T) {
	rdb, prefix := testenv.RedisClient(t)
	s := NewRedis(rdb, prefix+"idem:", time.Hour, time.Minute)
	ctx := context.Background()
	fp := Fingerprint("POST", "/p", nil)
	r, err := s.Begin(ctx, "k", fp)
	if err != nil {
		t.Fatal(err)
	}
	ttl := rdb.PTTL(ctx, prefix+"idem:k").Val()
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("lock TTL %v, want the lease", ttl)
	}
	if err := s.Complete(ctx, "k", r.Token, rec("x")); err != nil {
		t.Fatal(err)
	}
	ttl = rdb.PTTL(ctx, prefix+"idem:k").Val()
	if ttl <= time.Minute || ttl > time.Hour {
		t.Fatalf("answer TTL %v, want the retention", ttl)
	}
	// the lease's end, as Redis sees it: the key is gone, the holder is not one any more
	r, _ = s.Begin(ctx, "k2", fp)
	rdb.Del(ctx, prefix+"idem:k2")
	if err := s.Complete(ctx, "k2", r.Token, rec("x")); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("Complete after the lock expired: %v", err)
	}
}

func TestMemoryBound(t *testing.T) {
	s := NewMemory(time.Hour, time.Minute, 10_000, nil)
	ctx := context.Background()
	fp := Fingerprint("POST", "/p", nil)
	body := strings.Repeat("b", 1000)
	for i := range 50 {
		key := "k" + string(rune('A'+i))
		r, err := s.Begin(ctx, key, fp)
		if err != nil || r.State != Started {
			t.Fatalf("%s: %+v %v", key, r, err)
		}
		if err := s.Complete(ctx, key, r.Token, rec(body)); err != nil {
			t.Fatal(err)
		}
		if s.Bytes() > 10_000 {
			t.Fatalf("after %d answers: %d bytes over the bound", i+1, s.Bytes())
		}
	}
	// the newest are kept, the oldest are gone
	if r, _ := s.Begin(ctx, "k"+string(rune('A'+49)), fp); r.State != Replay {
		t.Fatalf("newest: %+v", r)
	}
	if r, _ := s.Begin(ctx, "kA", fp); r.State != Started {
		t.Fatalf("oldest: %+v", r)
	}
}

func TestConcurrentBeginOneWinner(t *testing.T) {
	rdb, prefix := testenv.RedisClient(t)
	for name, s := range map[string]Store{
		"memory": NewMemory(time.Hour, time.Minute, 1<<20, nil),
		"redis":  NewRedis(rdb, prefix+"idem:", time.Hour, time.Minute),
	} {
		t.Run(name, func(t *testing.T) {
			fp := Fingerprint("POST", "/p", nil)
			var wg sync.WaitGroup
			var mu sync.Mutex
			started := 0
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := s.Begin(context.Background(), "race", fp)
					if err != nil {
						t.Error(err)
						return
					}
					if r.State == Started {
						mu.Lock()
						started++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if started != 1 {
				t.Fatalf("%d requests took the lock", started)
			}
		})
	}
}

func BenchmarkFingerprint(b *testing.B) {
	body := []byte(strings.Repeat(`{"customer_id":"c1","amount":"10.00"}`, 10))
	b.ReportAllocs()
	for b.Loop() {
		Fingerprint("POST", "/api/v1/invoices", body)
	}
}

func BenchmarkMemoryReplay(b *testing.B) {
	s := NewMemory(time.Hour, time.Minute, 1<<20, nil)
	ctx := context.Background()
	fp := Fingerprint("POST", "/p", nil)
	r, _ := s.Begin(ctx, "k", fp)
	_ = s.Complete(ctx, "k", r.Token, rec(`{"id":1}`))
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := s.Begin(ctx, "k", fp); r.State != Replay {
			b.Fatal(r.State)
		}
	}
}
