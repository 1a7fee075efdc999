package limit

import (
	"context"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/rediscluster"
	"github.com/erpgate/erpgate/internal/redisclustertest"
)

// TestRedisClusterFailover: on a Redis Cluster, a company's counters
// survive its primary being failed over, gracefully and by a crash, and
// the store decides again by itself once the replica has taken over (the
// new primary has never seen the script: NOSCRIPT, then loaded).
func TestRedisClusterFailover(t *testing.T) {
	c := redisclustertest.Start(t, redisclustertest.Options{})
	cc := c.Client(t)
	rediscluster.FollowFailovers(cc) // as the erp app's client does
	s := NewRedis(cc)
	l := []Limit{{Key: "fo:rl:{acme}", Kind: Sliding, Max: 1000, Window: time.Hour},
		{Key: "fo:quota:{acme}:p", Kind: Fixed, Max: 1000, End: time.Now().Add(time.Hour)}}
	want := int64(0)
	// decideAgain decides until the store answers (at most 5 s), and
	// checks nothing admitted was lost.
	decideAgain := func(when string) {
		t.Helper()
		st := make([]State, 2)
		start, failed := time.Now(), 0
		for {
			r, err := s.Decide(context.Background(), time.Now(), 1, l, st)
			if err == nil {
				if r != -1 {
					t.Fatalf("%s: refused %d", when, r)
				}
				break
			}
			failed++
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: the store does not decide again: %v", when, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		want++
		if st[0].Used != want || st[1].Used != want {
			t.Fatalf("%s: used %d and %d, want %d (admissions lost)", when, st[0].Used, st[1].Used, want)
		}
		t.Logf("%s: deciding again after %d failed decisions (%s)", when, failed, time.Since(start).Round(time.Millisecond))
	}
	for range 10 {
		decideAgain("before")
	}
	c.Failover(l[0].Key)
	decideAgain("after a graceful failover")

	// the replica has every admission before the crash (replication is
	// asynchronous: the test waits for it, as a crash may not)
	c.Replicated(l[0].Key)
	killed, _ := c.KillPrimary(l[0].Key)
	decideAgain("after a crash and the replica's election")
	c.Restart(killed)
	decideAgain("after the crashed node rejoined")
}
