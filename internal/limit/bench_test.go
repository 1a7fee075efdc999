package limit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/testenv"
)

// countHook counts commands sent to Redis (a pipeline counts once): the
// round trips of a decision.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// benchLimits is what erp_quota decides for one request of a standard
// company: its rate and its monthly quota. Limits are high so every
// decision admits and writes (the costly path); companies rotate over 64.
func benchLimits(prefix string, i int) [2]Limit {
	c := "{c" + strconv.Itoa(i%64) + "}"
	return [2]Limit{
		{Key: prefix + "rl:" + c, Kind: Sliding, Max: 1 << 40, Window: time.Second},
		{Key: prefix + "quota:" + c + ":2026-11-01", Kind: Fixed, Max: 1 << 40, End: time.Now().Add(time.Hour)},
	}
}

func BenchmarkMemoryDecide(b *testing.B) {
	m := NewMemory()
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1))
		l := benchLimits("b:", i)
		var st [2]State
		for pb.Next() {
			if _, err := m.Decide(ctx, time.Now(), 1, l[:], st[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// countedClient is a client of the test Redis that counts its round trips,
// closed when the test ends, and a fresh key prefix.
func countedClient(tb testing.TB) (*redis.Client, *countHook, string) {
	url, prefix := testenv.Redis(tb)
	opts, _ := redis.ParseURL(url)
	c := redis.NewClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	hook := &countHook{}
	c.AddHook(hook)
	return c, hook, prefix
}

func BenchmarkRedisDecide(b *testing.B) {
	c, hook, prefix := countedClient(b)
	s := NewRedis(c)
	ctx := context.Background()
	l := benchLimits(prefix, 0)
	var st [2]State
	if _, err := s.Decide(ctx, time.Now(), 1, l[:], st[:]); err != nil { // loads the script
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		hook.n.Store(0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			l := benchLimits(prefix, i)
			if _, err := s.Decide(ctx, time.Now(), 1, l[:], st[:]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(hook.n.Load())/float64(b.N), "roundtrips/op")
	})
	// the floor: one round trip that does nothing
	b.Run("ping-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 32 concurrent clients (as the edge under load), spread over 64
	// companies or all of one company: decisions are batched, so there are
	// fewer round trips than decisions.
	for _, companies := range []int{64, 1} {
		b.Run("parallel-32/companies-"+strconv.Itoa(companies), func(b *testing.B) {
			hook.n.Store(0)
			var seq atomic.Int64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(1))
				var st [2]State
				for pb.Next() {
					l := benchLimits(prefix, i%companies)
					i++
					if _, err := s.Decide(ctx, time.Now(), 1, l[:], st[:]); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(hook.n.Load())/float64(b.N), "roundtrips/op")
		})
	}
}
