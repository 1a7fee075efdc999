package revocation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/rediscluster"
	"github.com/erpgate/erpgate/internal/redisclustertest"
)

// TestListenerOnACluster: on a six-node Redis Cluster the listener's
// resync reads the marks of every primary (not only the node its SCAN
// happens to reach), it hears a revocation published at any node, and
// after the primary holding its subscription crashes it subscribes again
// at the channel's new primary and is current again.
func TestListenerOnACluster(t *testing.T) {
	c := redisclustertest.Start(t, redisclustertest.Options{})
	cc := c.Client(t)
	rediscluster.FollowFailovers(cc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const prefix = "rc:"
	for i := range 40 { // marks on every primary, published before the listener ran
		if err := cc.Set(ctx, fmt.Sprintf("%s%ss%d", prefix, contract.RedisKeyRevokedSession, i), 1, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	set := NewSet(time.Now)
	l := &Listener{Redis: cc, Prefix: prefix, Set: set, TTL: time.Minute, Logger: zap.NewNop(), PingInterval: 200 * time.Millisecond}
	l.Run(ctx)
	within := func(d time.Duration, what string, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %s", what, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	within(5*time.Second, "resync of every primary's marks", func() bool {
		for i := range 40 {
			if !set.Has(fmt.Sprintf("s%d", i)) {
				return false
			}
		}
		return set.CurrentAt(time.Now(), time.Second)
	})
	for i, n := range c.Nodes { // PUBLISH reaches every node's subscribers
		if err := n.Client().Publish(ctx, prefix+contract.RedisChannelRevocation, fmt.Sprintf("p%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
		within(2*time.Second, "a revocation published at "+n.Addr(), func() bool { return set.Has(fmt.Sprintf("p%d", i)) })
	}

	channel := prefix + contract.RedisChannelRevocation
	killed, _ := c.KillPrimary(channel) // the subscription's node (go-redis subscribes at the channel's slot)
	took := within(5*time.Second, "current again after the crash", func() bool {
		return set.CurrentAt(time.Now(), 300*time.Millisecond)
	})
	if err := cc.Publish(ctx, channel, "after").Err(); err != nil {
		t.Fatal(err)
	}
	within(2*time.Second, "a revocation published after the failover", func() bool { return set.Has("after") })
	t.Logf("current again %s after the election", took.Round(time.Millisecond))
	c.Restart(killed)
}
