package rediscluster

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/redisclustertest"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// nodeTimeout is the cluster's cluster-node-timeout: how long a crashed
// primary goes unnoticed (production's default is 15 s; the window a
// crash opens scales with it).
const nodeTimeout = time.Second

// TestRedisCluster: three instances (A on_redis_down allow, B deny, C
// local; A and B given the cluster as comma-separated seeds, C as a
// redis:// URL with addr= seeds) on one cluster and one Postgres.
func TestRedisCluster(t *testing.T) {
	cluster := redisclustertest.Start(t, redisclustertest.Options{NodeTimeout: nodeTimeout})
	pg := testenv.Postgres(t)
	cc := cluster.Client(t)
	// a key prefix that puts acme's counters and the revocation channel on
	// one primary: the crash below then also drops every instance's
	// revocation subscription (go-redis subscribes at the channel's slot)
	var prefix string
	for i := 0; ; i++ {
		prefix = "rc" + strconv.Itoa(cluster.Nodes[0].Port) + "-" + strconv.Itoa(i) + ":"
		if cluster.PrimaryOf(prefix+contract.RedisKeyRateLimit+"{acme}") == cluster.PrimaryOf(prefix+contract.RedisChannelRevocation) {
			break
		}
	}
	seeds := cluster.Seeds()
	addrs := cluster.Addrs()
	asURL := "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	policies := []string{"allow", "deny", "local"}
	ins := map[string]*stacktest.Instance{}
	for _, policy := range policies {
		redisURL := seeds
		if policy == "local" {
			redisURL = asURL
		}
		ins[policy] = stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: map[string]string{
			"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
			"ERP_MASTER_KEY": testMasterKey, "ERP_ON_REDIS_DOWN": policy,
		}})
	}
	all := []*stacktest.Instance{ins["allow"], ins["deny"], ins["local"]}

	t.Run("quotas are exact across the instances", func(t *testing.T) {
		// globex is on free: 30/m. 90 requests, 30 at a time, spread over the three.
		bob := demoauth.Login(t, all[0].URL, "bob@globex.test", "globex").Access
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for c := range 30 {
			wg.Go(func() {
				for i := range 3 {
					a := get(all[(c+i)%3].URL+"/api/v2/invoices?limit=1", bob)
					mu.Lock()
					counts[a.outcome()]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if counts["200 counted"] != 30 || counts["429"] != 60 || len(counts) != 2 {
			t.Fatalf("90 requests for a 30/m company over three instances: %v, want exactly 30 admitted and 60 refused", counts)
		}
		// the counters are in the cluster, one company's keys in one slot
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := cc.ZCard(ctx, prefix+contract.RedisKeyRateLimit+"{globex}").Result()
		if err != nil || n != 30 {
			t.Fatalf("globex's window in the cluster: %d %v", n, err)
		}
		t.Logf("90 requests over three instances for a 30/m company: %v", counts)
	})

	t.Run("a logout at one instance is heard by the others", func(t *testing.T) {
		s1 := demoauth.Login(t, all[0].URL, "alice@acme.test", "acme")
		s2 := demoauth.Login(t, all[1].URL, "alice@acme.test", "acme")
		for _, in := range all {
			for _, s := range []demoauth.Tokens{s1, s2} {
				if st, code := whoami(t, in, s.Access); st != 200 {
					t.Fatalf("%s refused a live token: %d %s", in.URL, st, code)
				}
			}
		}
		r := httpt.Do(t, "POST", all[2].URL+"/api/v1/auth/logout", []byte(`{"all":true}`), demoauth.Bearer(s1.Access))
		if r.StatusCode != 200 {
			t.Fatalf("logout-all at C: %d %s", r.StatusCode, r.Body)
		}
		took := within(t, 5*time.Second, "both sessions refused at A and B", func() bool {
			for _, in := range all[:2] {
				for _, s := range []demoauth.Tokens{s1, s2} {
					if st, code := whoami(t, in, s.Access); st != 401 || code != contract.CodeTokenRevoked {
						return false
					}
				}
			}
			return true
		})
		t.Logf("logout-all at C: both sessions refused (401 TOKEN_REVOKED) at A and B after %s", took.Round(time.Millisecond))
	})

	t.Run("a primary failed over under load", func(t *testing.T) {
		failoverUnderLoad(t, cluster, ins, prefix+contract.RedisKeyRateLimit+"{acme}")
	})
}

// failoverUnderLoad: two clients per instance call /api/v2/invoices for
// acme without pause while acme's primary is failed over gracefully
// (CLUSTER FAILOVER), then crashed (SIGKILL, until its replica is
// elected), then started again. It asserts each policy's behaviour and
// prints what the clients saw.
func failoverUnderLoad(t *testing.T, cluster *redisclustertest.Cluster, ins map[string]*stacktest.Instance, key string) {
	rec := &recorder{start: time.Now(), by: map[string][]sample{}}
	tokens := map[string]string{}
	for policy, in := range ins {
		tokens[policy] = demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access
	}
	kept := demoauth.Login(t, ins["local"].URL, "alice@acme.test", "acme").Access // logged out after the crash
	rec.start = time.Now()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for policy, in := range ins {
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					rec.add(policy, get(in.URL+"/api/v2/invoices?limit=1", tokens[policy]).outcome())
				}
			})
		}
	}
	defer func() { stop.Store(true); wg.Wait() }()
	mark := func() time.Duration { return time.Since(rec.start) }
	time.Sleep(time.Second)

	gracefulAt := mark()
	cluster.Failover(key)
	gracefulDone := mark()
	time.Sleep(time.Second)

	// the crash: the replica has every write first (a real crash may lose
	// the last ones; that is not what is measured here)
	cluster.Replicated(key)
	crashAt := mark()
	killed, _ := cluster.KillPrimary(key)
	elected := mark()
	// every instance counts in Redis again
	within(t, 10*time.Second, "every instance back on Redis", func() bool {
		for policy, in := range ins {
			if usageStore(in, tokens[policy]) != "redis" {
				return false
			}
		}
		return true
	})
	back := mark()
	// the revocation subscriptions, lost with the crashed primary, are
	// made again at the channel's new primary: a logout at C is heard at
	// A and B
	if r := httpt.Do(t, "POST", ins["local"].URL+"/api/v1/auth/logout", []byte(`{}`), demoauth.Bearer(kept)); r.StatusCode != 200 {
		t.Fatalf("logout at C after the crash: %d %s", r.StatusCode, r.Body)
	}
	heard := within(t, 5*time.Second, "a logout after the crash refused at A and B", func() bool {
		for _, policy := range []string{"allow", "deny"} {
			if st, code := whoami(t, ins[policy], kept); st != 401 || code != contract.CodeTokenRevoked {
				return false
			}
		}
		return true
	})
	t.Logf("a logout at C %s after the election: refused at A and B after %s", (mark() - elected).Round(time.Millisecond), heard.Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	rejoinAt := mark()
	cluster.Restart(killed)
	rejoined := mark()
	time.Sleep(500 * time.Millisecond)
	end := mark()
	stop.Store(true)
	wg.Wait()

	t.Logf("graceful failover (CLUSTER FAILOVER) took %s; crash: replica elected %s after the SIGKILL (cluster-node-timeout %s), every instance on Redis again %s after the election; the crashed node rejoined as a replica in %s",
		(gracefulDone - gracefulAt).Round(time.Millisecond), (elected - crashAt).Round(time.Millisecond), nodeTimeout,
		(back - elected).Round(time.Millisecond), (rejoined - rejoinAt).Round(time.Millisecond))
	t.Logf("timeline from the crash, one character per 100 ms ('.' all counted 200s, '+' some other answers, '#' only other answers); the SIGKILL at 0, the election at %s:",
		(elected - crashAt).Round(100*time.Millisecond))
	for _, policy := range []string{"allow", "deny", "local"} {
		t.Logf("  %-5s |%s|", policy, rec.timeline(policy, crashAt, back+time.Second, 100*time.Millisecond))
	}
	for _, policy := range []string{"allow", "deny", "local"} {
		g := rec.window(policy, gracefulAt, crashAt-1)
		c := rec.window(policy, crashAt, rejoinAt-1)
		r := rec.window(policy, rejoinAt, end)
		t.Logf("%s: graceful failover: %s", policy, g)
		if c.first >= 0 {
			t.Logf("%s: crash: %s; answers other than a counted 200 from %s to %s after the SIGKILL (%s)",
				policy, c, (c.first - crashAt).Round(time.Millisecond), (c.last - crashAt).Round(time.Millisecond), (c.last - c.first).Round(time.Millisecond))
		} else {
			t.Logf("%s: crash: %s", policy, c)
		}
		t.Logf("%s: rejoin: %s", policy, r)
	}

	// One switch each way per instance: the probe asks the failed slot's
	// node, so no PING of another node calls Redis back while the slot is
	// not served (each such false return costs a request a failed round
	// trip, and the log two lines).
	for _, policy := range []string{"allow", "deny", "local"} {
		away, back := 0, 0
		for line := range strings.SplitSeq(ins[policy].Logs(), "\n") {
			switch {
			case strings.Contains(line, `"msg":"erp_quota: redis unreachable`):
				away++
			case strings.Contains(line, `"msg":"erp_quota: redis answers again`):
				back++
			default:
				continue
			}
			t.Logf("%s log: %.300s", policy, line)
		}
		if away != 1 || back != 1 {
			t.Errorf("%s: %d switches away from Redis and %d back, want one each", policy, away, back)
		}
	}

	// What each policy defines, over the whole run.
	whole := map[string]window{}
	for _, policy := range []string{"allow", "deny", "local"} {
		whole[policy] = rec.window(policy, 0, end)
		for outcome := range whole[policy].counts {
			ok := outcome == "200 counted"
			switch policy {
			case "allow":
				ok = ok || outcome == "200 uncounted"
			case "deny":
				ok = ok || outcome == "503 envelope"
			}
			if !ok {
				t.Errorf("%s: %d answers %q: not what the policy defines (%s)", policy, whole[policy].counts[outcome], outcome, whole[policy])
			}
		}
		if whole[policy].counts["200 counted"] < 50 {
			t.Errorf("%s: only %d counted answers: the load did not run", policy, whole[policy].counts["200 counted"])
		}
	}
	// The crash must have been felt where Redis was asked (it was, by all
	// three, for acme's slot): allow let requests through uncounted, deny
	// refused with 503; local counted them locally (indistinguishable from
	// outside, so nothing to assert beyond no refusal).
	if rec.window("allow", crashAt, back).counts["200 uncounted"] == 0 {
		t.Error("allow: no uncounted answer during the crash: was the primary of acme's slot the one killed?")
	}
	if rec.window("deny", crashAt, back).counts["503 envelope"] == 0 {
		t.Error("deny: no 503 during the crash")
	}
	// After the election, every policy is back on Redis within one probe
	// interval (1 s) plus the cluster client's re-read of the layout (the
	// bound leaves room for a loaded machine; the figure is printed above).
	if back-elected > 5*time.Second {
		t.Errorf("back on Redis %s after the election, want within 5 s", back-elected)
	}
}
