package limit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"

	"github.com/erpgate/erpgate/internal/redisclustertest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// stores is the contract suite's subjects: every Store implementation, each
// with its own key prefix.
// The cluster subject is a six-node Redis Cluster (started once, by the
// caller's test): every decision's keys must share a slot (the {company}
// hash tag), and a batch's groups go to several primaries in one pipeline.
func stores(t *testing.T) map[string]func(t *testing.T) (Store, string) {
	cluster := redisclustertest.Start(t, redisclustertest.Options{}).Client(t)
	var n atomic.Int64
	return map[string]func(t *testing.T) (Store, string){
		"memory": func(t *testing.T) (Store, string) { return NewMemory(), "t:" },
		"redis": func(t *testing.T) (Store, string) {
			c, prefix := testenv.RedisClient(t)
			return NewRedis(c), prefix
		},
		"redis-cluster": func(t *testing.T) (Store, string) {
			return NewRedis(cluster), fmt.Sprintf("t%d:", n.Add(1))
		},
	}
}

// t0 is near the real time: Redis expires keys by its own clock.
var t0 = time.Now().Truncate(time.Second)

func decide(t *testing.T, s Store, now time.Time, cost int64, limits ...Limit) (int, []State) {
	t.Helper()
	st := make([]State, len(limits))
	r, err := s.Decide(context.Background(), now, cost, limits, st)
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

func TestStoreContract(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("sliding admits exactly max and a refusal consumes nothing", func(t *testing.T) {
				s, p := mk(t)
				l := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 5, Window: time.Minute}
				for i := range 5 {
					r, st := decide(t, s, t0.Add(time.Duration(i)*time.Second), 1, l)
					if r != -1 || st[0].Used != int64(i+1) {
						t.Fatalf("request %d: refused=%d used=%d", i, r, st[0].Used)
					}
					if want := t0.Add(time.Minute); !st[0].Reset.Equal(want) {
						t.Fatalf("request %d: reset %v, want %v (oldest + window)", i, st[0].Reset, want)
					}
				}
				for i := range 20 { // refused many times: nothing counted
					r, st := decide(t, s, t0.Add(30*time.Second+time.Duration(i)*time.Millisecond), 1, l)
					if r != 0 || st[0].Used != 5 {
						t.Fatalf("over the limit: refused=%d used=%d", r, st[0].Used)
					}
					if want := t0.Add(time.Minute); !st[0].Reset.Equal(want) {
						t.Fatalf("refused: reset %v, want %v", st[0].Reset, want)
					}
				}
				// the window ends at t0+60s exactly: the first admission leaves, one slot
				if r, _ := decide(t, s, t0.Add(time.Minute-time.Millisecond), 1, l); r != 0 {
					t.Fatal("admitted before the oldest admission left the window")
				}
				if r, _ := decide(t, s, t0.Add(time.Minute), 1, l); r != -1 {
					t.Fatal("refused after the oldest admission left the window")
				}
				if r, _ := decide(t, s, t0.Add(time.Minute), 1, l); r != 0 {
					t.Fatal("a refusal consumed nothing, so only one slot was free")
				}
			})
			t.Run("no doubling across a window boundary", func(t *testing.T) {
				s, p := mk(t)
				l := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 10, Window: 10 * time.Second}
				rng := rand.New(rand.NewPCG(1, 2))
				var admitted []time.Time
				now := t0
				for range 2000 {
					now = now.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
					if r, _ := decide(t, s, now, 1, l); r == -1 {
						admitted = append(admitted, now)
					}
				}
				// oracle: no interval (x-w, x] holds more than max admissions,
				// and every refusal had max of them in its window
				for i := range admitted {
					n := 0
					for j := i; j < len(admitted) && admitted[j].Sub(admitted[i]) < l.Window; j++ {
						n++
					}
					if n > int(l.Max) {
						t.Fatalf("%d admissions within %s from %v", n, l.Window, admitted[i])
					}
				}
				// 2000 requests at ~20ms over ~40s: about 4 windows' worth admitted
				if len(admitted) < 35 || len(admitted) > 50 {
					t.Fatalf("admitted %d, want about 40 (max per window, no more)", len(admitted))
				}
			})
			t.Run("a decision is all or nothing over its limits", func(t *testing.T) {
				s, p := mk(t)
				end := t0.Add(24 * time.Hour)
				rate := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 100, Window: time.Minute}
				client := Limit{Key: p + "rl:{acme}:c:u1", Kind: Sliding, Max: 3, Window: time.Minute}
				quota := Limit{Key: p + "quota:{acme}:2026-05-01", Kind: Fixed, Max: 5, End: end}
				for i := range 3 {
					if r, _ := decide(t, s, t0, 1, rate, client, quota); r != -1 {
						t.Fatalf("request %d refused", i)
					}
				}
				r, st := decide(t, s, t0, 1, rate, client, quota)
				if r != 1 || st[0].Used != 3 || st[1].Used != 3 || st[2].Used != 3 {
					t.Fatalf("client sub-limit: refused=%d states=%+v", r, st)
				}
				other := Limit{Key: p + "rl:{acme}:c:u2", Kind: Sliding, Max: 3, Window: time.Minute}
				for range 2 {
					if r, _ := decide(t, s, t0, 1, rate, other, quota); r != -1 {
						t.Fatal("another client of the company refused before the quota")
					}
				}
				r, st = decide(t, s, t0, 1, rate, other, quota)
				if r != 2 || st[0].Used != 5 || st[1].Used != 2 || st[2].Used != 5 || !st[2].Reset.Equal(end) {
					t.Fatalf("quota: refused=%d states=%+v", r, st)
				}
				// next period: a new counter key and end
				next := Limit{Key: p + "quota:{acme}:2026-05-15", Kind: Fixed, Max: 5, End: end.Add(30 * 24 * time.Hour)}
				if r, st := decide(t, s, t0.Add(25*time.Hour), 1, rate, other, next); r != -1 || st[2].Used != 1 {
					t.Fatalf("new period: refused=%d states=%+v", r, st)
				}
			})
			t.Run("other tenant", func(t *testing.T) {
				s, p := mk(t)
				a := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 2, Window: time.Minute}
				g := Limit{Key: p + "rl:{globex}", Kind: Sliding, Max: 2, Window: time.Minute}
				decide(t, s, t0, 1, a)
				decide(t, s, t0, 1, a)
				if r, _ := decide(t, s, t0, 1, a); r != 0 {
					t.Fatal("acme not limited")
				}
				if r, st := decide(t, s, t0, 1, g); r != -1 || st[0].Used != 1 {
					t.Fatalf("globex counted acme's requests: %+v", st)
				}
			})
			t.Run("peek and impossible costs", func(t *testing.T) {
				s, p := mk(t)
				l := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 2, Window: time.Minute}
				if r, st := decide(t, s, t0, 0, l); r != -1 || st[0].Used != 0 || !st[0].Reset.Equal(t0) {
					t.Fatalf("peek of nothing: %d %+v", r, st)
				}
				if r, st := decide(t, s, t0, 3, l); r != 0 || !st[0].Reset.IsZero() {
					t.Fatalf("cost above max: %d %+v", r, st)
				}
				if r, st := decide(t, s, t0, 2, l); r != -1 || st[0].Used != 2 {
					t.Fatalf("cost 2: %d %+v", r, st)
				}
				if r, st := decide(t, s, t0.Add(time.Second), 0, l); r != -1 || st[0].Used != 2 {
					t.Fatalf("peek: %d %+v", r, st)
				}
				zero := Limit{Key: p + "rl:{none}", Kind: Sliding, Max: 0, Window: time.Minute}
				if r, _ := decide(t, s, t0, 1, zero); r != 0 {
					t.Fatal("max 0 admitted")
				}
			})
			t.Run("bad limits", func(t *testing.T) {
				s, p := mk(t)
				st := make([]State, 5)
				for name, ls := range map[string][]Limit{
					"empty key":   {{Key: "", Kind: Sliding, Max: 1, Window: time.Second}},
					"no window":   {{Key: p + "x", Kind: Sliding, Max: 1}},
					"five limits": make([]Limit, 5),
				} {
					if _, err := s.Decide(context.Background(), t0, 1, ls, st); err == nil {
						t.Errorf("%s: no error", name)
					}
				}
			})
			t.Run("concurrent clients admit exactly max", func(t *testing.T) {
				s, p := mk(t)
				l := []Limit{{Key: p + "rl:{acme}", Kind: Sliding, Max: 50, Window: time.Hour},
					{Key: p + "quota:{acme}:p", Kind: Fixed, Max: 1000, End: t0.Add(time.Hour)}}
				var admitted atomic.Int64
				var wg sync.WaitGroup
				for g := range 16 {
					wg.Go(func() {
						st := make([]State, 2)
						for i := range 20 {
							r, err := s.Decide(context.Background(), t0.Add(time.Duration(g*20+i)*time.Millisecond), 1, l, st)
							if err != nil {
								t.Error(err)
								return
							}
							if r == -1 {
								admitted.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if admitted.Load() != 50 {
					t.Fatalf("admitted %d of 320, want exactly 50", admitted.Load())
				}
				if _, st := decide(t, s, t0.Add(time.Second), 0, l...); st[1].Used != 50 {
					t.Fatalf("quota counted %d, want 50 (refusals consume nothing)", st[1].Used)
				}
			})
			t.Run("ulule limiter.Store", func(t *testing.T) {
				s, p := mk(t)
				clock := &fakeClock{t: t0}
				lim := limiter.New(ULStore{Store: s, Clock: clock, Prefix: p}, limiter.Rate{Limit: 3, Period: time.Minute})
				ctx := context.Background()
				for i := range 3 {
					c, err := lim.Get(ctx, "k")
					if err != nil || c.Reached || c.Remaining != int64(2-i) || c.Limit != 3 {
						t.Fatalf("get %d: %+v %v", i, c, err)
					}
				}
				c, err := lim.Get(ctx, "k")
				if err != nil || !c.Reached || c.Remaining != 0 || c.Reset != t0.Add(time.Minute).Unix() {
					t.Fatalf("4th get: %+v %v", c, err)
				}
				if c, err := lim.Peek(ctx, "k"); err != nil || c.Remaining != 0 {
					t.Fatalf("peek: %+v %v", c, err)
				}
				if c, err := lim.Reset(ctx, "k"); err != nil || c.Remaining != 3 {
					t.Fatalf("reset: %+v %v", c, err)
				}
				if c, err := lim.Increment(ctx, "k", 2); err != nil || c.Remaining != 1 || c.Reached {
					t.Fatalf("increment: %+v %v", c, err)
				}
			})
		})
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestMemorySweep(t *testing.T) {
	m := NewMemory()
	st := make([]State, 2)
	ls := []Limit{{Key: "a", Kind: Sliding, Max: 5, Window: time.Minute}, {Key: "q", Kind: Fixed, Max: 5, End: t0.Add(time.Hour)}}
	if _, err := m.Decide(context.Background(), t0, 1, ls, st); err != nil {
		t.Fatal(err)
	}
	if n := m.Sweep(t0.Add(59 * time.Second)); n != 2 {
		t.Fatalf("swept too early: %d keys left", n)
	}
	if n := m.Sweep(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("window not swept: %d keys left", n)
	}
	if n := m.Sweep(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("period not swept: %d keys left", n)
	}
}

// TestRedisRecoversScriptCache: after SCRIPT FLUSH (what a Redis restart
// does) the store reloads the script by itself.
func TestRedisRecoversScriptCache(t *testing.T) {
	c, p := testenv.RedisClient(t)
	s := NewRedis(c)
	l := Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 5, Window: time.Minute}
	decide(t, s, t0, 1, l)
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, st := decide(t, s, t0, 1, l); st[0].Used != 2 {
		t.Fatalf("used %d after flush", st[0].Used)
	}
}

// TestRedisKeysExpire: windows and counters do not outlive their use.
func TestRedisKeysExpire(t *testing.T) {
	c, p := testenv.RedisClient(t)
	s := NewRedis(c)
	now := time.Now()
	end := now.Add(time.Hour)
	decide(t, s, now, 1, Limit{Key: p + "rl:{acme}", Kind: Sliding, Max: 5, Window: time.Minute},
		Limit{Key: p + "quota:{acme}:x", Kind: Fixed, Max: 5, End: end})
	ctx := context.Background()
	if ttl := c.PTTL(ctx, p+"rl:{acme}").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("window TTL %v", ttl)
	}
	exp := c.PExpireTime(ctx, p+"quota:{acme}:x").Val()
	if want := time.Duration(end.Add(7*24*time.Hour).UnixMilli()) * time.Millisecond; exp != want {
		t.Fatalf("quota expires at %v, want %v", exp, want)
	}
}

var _ redis.Scripter = (*redis.Client)(nil)

func ExampleParseRate() {
	r, _ := ParseRate("60/m")
	fmt.Println(r.Max, r.Window, r)
	// Output: 60 1m0s 60/m
}
