package quota

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/redisclustertest"
)

// TestRedisClusterPrimaryCrash: on a Redis Cluster whose primary for
// globex crashes, a deny handler refuses with 503 until the replica is
// elected — without going back to Redis in between (a PING answered by
// another node is no sign the failed slot is served again) — and counts
// in Redis again soon after the election.
func TestRedisClusterPrimaryCrash(t *testing.T) {
	c := redisclustertest.Start(t, redisclustertest.Options{})
	clk := &clock{t: time.Now()}
	h := newHandler(t, `{"redis":"`+c.Seeds()+`","key_prefix":"crash:"}`,
		`{"on_redis_down":"deny","probe_interval":"20ms","timeout":"100ms","plans":{"free":{"rate":"1000/m"}}}`, clk)
	if res := serve(h, globex); res.err != nil || !res.called {
		t.Fatalf("cluster up: %v", res.err)
	}
	key := "crash:" + contract.RedisKeyRateLimit + "{globex}"
	// While the slot is not served nothing may call Redis back: once in
	// fallback, the handler leaves it once (when the slot is served again)
	// and never enters it again. Back and forth — the probe of a random
	// node answering, the next decision failing — is a flap.
	var flapped atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		entered, left := false, false
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			switch down := h.fallback.down.Load(); {
			case down && left:
				flapped.Add(1)
				left = false
			case down:
				entered = true
			case entered:
				left = true
			}
		}
	}()
	go func() { // the crash, while the test serves
		defer close(stop)
		c.KillPrimary(key)
	}()
	refused := 0
	for {
		select {
		case <-stop:
		default:
			res := serve(h, globex)
			if res.err != nil {
				if ce := refusal(t, res); ce.Status != 503 || ce.Code != contract.CodeServiceUnavailable {
					t.Fatalf("while the primary is down: %d %s", ce.Status, ce.Code)
				}
				refused++
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		break
	}
	<-done
	if refused == 0 {
		t.Fatal("no 503 while globex's primary was down")
	}
	if n := flapped.Load(); n > 0 {
		t.Fatalf("went back to Redis and into fallback again %d times before the slot was served again", n)
	}
	start := time.Now()
	for {
		if res := serve(h, globex); res.err == nil && res.w.Header().Get("RateLimit") != "" {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("not counting in Redis 3 s after the election")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d refusals while the primary was down; counting in Redis %s after the election", refused, time.Since(start).Round(time.Millisecond))
}
