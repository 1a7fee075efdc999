package secmon_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/redisclustertest"
	"github.com/erpgate/erpgate/internal/secmon"
)

// TestBlocklistOnACluster: on a Redis Cluster, an instance started after
// the blocks were made loads all of them (their keys are spread over
// every primary; a SCAN through the cluster client reaches one), and
// hears a block made afterwards.
func TestBlocklistOnACluster(t *testing.T) {
	c := redisclustertest.Start(t, redisclustertest.Options{}).Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := secmon.NewBlocklist(c, "bl:", nil, nil)
	for i := range 30 {
		if _, err := a.Block(ctx, netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i+1)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	late := secmon.NewBlocklist(c, "bl:", nil, nil)
	go late.Run(ctx)
	within := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s (%d blocked)", what, late.Len())
			}
		}
	}
	within("every block loaded", func() bool { return late.Len() == 30 })
	if _, err := a.Block(ctx, netip.MustParseAddr("198.51.100.9"), time.Minute); err != nil {
		t.Fatal(err)
	}
	within("a later block heard", func() bool { return late.Len() == 31 })
}
