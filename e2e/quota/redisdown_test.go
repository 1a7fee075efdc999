package quota

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/redisproc"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestRedisStoppedAndRestartedUnderLoad is the second "Must show": a
// private redis-server is killed and started again while clients keep
// calling one instance per policy; each policy does what it says while
// Redis is down, and every instance goes back to Redis by itself.
func TestRedisStoppedAndRestartedUnderLoad(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	type inst struct {
		policy string
		in     *stacktest.Instance
		token  string
	}
	var ins []*inst
	for _, policy := range []string{"allow", "deny", "local"} {
		in := stacktest.Start(t, stacktest.Options{
			Config: caddyfile(examplePlans + "\n\t\t\t\t\ton_redis_down " + policy + "\n\t\t\t\t\ttimeout 200ms\n\t\t\t\t\tprobe_interval 100ms"),
			Env:    map[string]string{"ERP_REDIS_URL": srv.URL, "ERP_KEY_PREFIX": "t-" + policy + ":"},
		})
		// acme: standard, 6000/m, far from the limit under this load
		ins = append(ins, &inst{policy, in, demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access})
	}

	const (
		up       = "redis"
		down     = "down"
		restored = "restored"
	)
	var phase atomic.Value
	phase.Store(up)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]map[string]int{} // policy -> outcome -> count
	bad := []string{}
	for _, it := range ins { // all before any worker reads seen
		seen[it.policy] = map[string]int{}
	}
	for _, it := range ins {
		for range 4 {
			wg.Go(func() {
				for !stop.Load() {
					a := get(it.in.URL+"/api/v2/invoices?limit=1", it.token)
					// the phase when the answer came: an answer still in
					// "up" was decided before Redis was stopped
					ph := phase.Load().(string)
					outcome := "error"
					switch {
					case a.err != nil:
					case a.status == 200 && a.header.Get("RateLimit") != "":
						outcome = "200 counted"
					case a.status == 200:
						outcome = "200 uncounted"
					case a.status == 503 && strings.Contains(string(a.body), `"code":"SERVICE_UNAVAILABLE"`) && a.header.Get("Retry-After") != "":
						outcome = "503"
					default:
						outcome = "other"
					}
					mu.Lock()
					seen[it.policy][ph+" "+outcome]++
					ok := outcome == "200 counted" // counted: by Redis, or locally
					if ph != up {                  // after the restart too, until the probe finds Redis

						switch it.policy {
						case "allow":
							ok = ok || outcome == "200 uncounted"
						case "deny":
							ok = ok || outcome == "503"
						}
					}
					if !ok {
						bad = append(bad, it.policy+": "+ph+": "+outcome)
					}
					mu.Unlock()
				}
			})
		}
	}
	count := func(policy, key string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[policy][key]
	}

	eventually(t, 20*time.Second, "load before the outage", func() bool {
		return count("allow", up+" 200 counted") > 20 && count("deny", up+" 200 counted") > 20 && count("local", up+" 200 counted") > 20
	})
	phase.Store(down)
	srv.Stop()
	want := map[string]string{"allow": down + " 200 uncounted", "deny": down + " 503", "local": down + " 200 counted"}
	eventually(t, 30*time.Second, "each policy in force", func() bool {
		for _, it := range ins {
			if count(it.policy, want[it.policy]) < 20 {
				return false
			}
		}
		return true
	})
	for _, it := range ins {
		if u := getUsageMaybe(t, it.in.URL, it.token); it.policy == "local" && (u == nil || u.Store != "local") {
			t.Fatalf("local: usage while Redis is down: %+v", u)
		}
	}
	srv.Restart()
	phase.Store(restored)
	eventually(t, 30*time.Second, "back on Redis", func() bool {
		for _, it := range ins {
			u := getUsageMaybe(t, it.in.URL, it.token)
			if u == nil || u.Store != "redis" || count(it.policy, restored+" 200 counted") < 20 {
				return false
			}
		}
		return true
	})
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d answers not as the policy says, e.g. %v; all: %v", len(bad), bad[:min(len(bad), 10)], seen)
	}
	for _, it := range ins {
		// One outage: one switch each way. A second pair was seen once under
		// the whole suite's load, when the restarted Redis dropped the first
		// connections again; every switch away must still have come back.
		away, back := metric(t, it.in, `erpgate_quota_redis_switches_total{to="fallback"}`), metric(t, it.in, `erpgate_quota_redis_switches_total{to="redis"}`)
		if away != back || (away != "1" && away != "2") {
			t.Fatalf("%s: switch metrics: %q %q", it.policy, metric(t, it.in, `erpgate_quota_redis_switches_total{to="fallback"}`), metric(t, it.in, `erpgate_quota_redis_switches_total{to="redis"}`))
		}
		logs := it.in.Logs()
		if !contains(logs, "erp_quota: redis unreachable") || !contains(logs, "erp_quota: redis answers again") {
			t.Fatalf("%s: no switch log lines", it.policy)
		}
	}
	t.Logf("answers: %v", seen)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// getUsageMaybe is getUsage that returns nil for a non-200 (deny/allow
// while Redis is down answer 503).
func getUsageMaybe(t *testing.T, base, token string) *usage {
	t.Helper()
	a := get(base+"/api/v1/usage", token)
	if a.err != nil || a.status != 200 {
		return nil
	}
	var u usage
	e := a.envelope(t)
	if err := json.Unmarshal(e.Data, &u); err != nil {
		return nil
	}
	return &u
}
