package rediscluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/rediscluster"
	"github.com/erpgate/erpgate/internal/redisclustertest"
)

// TestOnACluster: one six-node cluster for Keys and FollowFailovers.
func TestOnACluster(t *testing.T) {
	c := redisclustertest.Start(t, redisclustertest.Options{})
	ctx := context.Background()

	t.Run("Keys finds the keys of every primary", func(t *testing.T) {
		cc := c.Client(t)
		var want []string
		for i := range 60 {
			k := fmt.Sprintf("scan:k%d", i)
			want = append(want, k)
			if err := cc.Set(ctx, k, 1, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		_ = cc.Set(ctx, "other:k", 1, time.Minute).Err()
		got, err := rediscluster.Keys(ctx, cc, "scan:*", 7) // small pages: several SCAN calls per node
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		got = slices.Compact(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Keys found %d of %d: %v", len(got), len(want), got)
		}
		// what it fixes: SCAN through the cluster client sees one node
		var one []string
		for it := cc.Scan(ctx, 0, "scan:*", 1000).Iterator(); it.Next(ctx); {
			one = append(one, it.Val())
		}
		if len(one) >= len(want) {
			t.Fatalf("a plain SCAN found all %d keys: the cluster has one primary?", len(one))
		}
		// a primary that does not answer is an error, not part of the keyspace
		killed, _ := c.KillPrimary("scan:k1")
		defer c.Restart(killed)
		stale := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{killed.Addr()}})
		defer stale.Close()
		if _, err := rediscluster.Keys(ctx, stale, "scan:*", 100); err == nil {
			t.Fatal("Keys through a client that reaches no node: no error")
		}
	})

	t.Run("FollowFailovers learns a crash's new primary at the first failure", func(t *testing.T) {
		cc := c.Client(t)
		rediscluster.FollowFailovers(cc)
		plain := c.Client(t) // go-redis alone, for comparison
		const key = "fo:{acme}"
		for _, cl := range []*redis.ClusterClient{cc, plain} {
			if err := cl.Set(ctx, key, "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// the replica that will be elected holds the key (or the new
		// primary answers redis.Nil: data loss is not what is tested)
		c.Replicated(key)
		killed, _ := c.KillPrimary(key)
		defer c.Restart(killed)
		// as erp_quota calls: 100 ms per call
		get := func(cl *redis.ClusterClient) error {
			cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			return cl.Get(cctx, key).Err()
		}
		start, fails := time.Now(), 0
		for err := get(cc); err != nil; err = get(cc) {
			fails++
			if time.Since(start) > 5*time.Second { // go-redis alone: up to 10 s
				t.Fatalf("the new primary is not used 5 s after its election: %v (%d failed calls)", err, fails)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("with FollowFailovers: answered %s after the election (%d failed calls)", time.Since(start).Round(time.Millisecond), fails)
		if err := get(plain); err == nil {
			t.Log("go-redis alone found the new primary too (its 10 s reload came first)")
		} else {
			t.Logf("go-redis alone still fails: %v", err)
		}
	})
}
