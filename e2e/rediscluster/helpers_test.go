// Package rediscluster drives three gateway processes on a six-node Redis
// Cluster (three primaries, three replicas, on loopback) and one Postgres:
// quotas exact across the instances, revocations heard by every instance,
// and a primary failed over — gracefully, then by a crash — under load,
// with each instance on another on_redis_down policy, what clients saw
// measured and printed.
package rediscluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// caddyfile: the auth service; /whoami behind erp_auth (any verified
// token: 200 "ok"); /api/* as in Caddyfile.example with erp_quota's
// on_redis_down from the environment. free is 30/m (the exactness check),
// standard far above what the load sends.
const caddyfile = `{
	admin {$ERP_ADMIN}
	metrics
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
		backend invoices {
			version v2 http://{$ERP_DEMO_LISTEN}/v2
		}
	}
}

http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /api/v1/auth/* {
			erp_authsvc
		}
		handle /.well-known/* {
			erp_authsvc
		}
		handle /api/v1/usage {
			erp_auth {
				authenticated_only
			}
			erp_usage
		}
		handle /whoami {
			erp_auth {
				authenticated_only
				api_keys off
			}
			respond "ok" 200
		}
		handle /api/* {
			route {
				erp_version
				erp_auth
				erp_quota {
					plan free 30/m 10000
					plan standard 1000000/m 100000000
					on_redis_down {$ERP_ON_REDIS_DOWN}
				}
				reverse_proxy {
					dynamic erp
					header_up Host {upstream_hostport}
				}
			}
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}

http://{$ERP_DEMO_LISTEN} {
	erp_demo
}
`

// client is a keep-alive client for load.
var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func get(url, token string) answer {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// code is the envelope's first error code, "" for none or no envelope.
func (a answer) code() string {
	var e struct {
		Success bool `json:"success"`
		Errors  []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(a.body, &e) != nil || e.Success || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// outcome classifies an answer of the load:
//
//	"200 counted"    200 with RateLimit headers (counted by Redis, or locally)
//	"200 uncounted"  200 without them (on_redis_down allow)
//	"503 envelope"   503 SERVICE_UNAVAILABLE in the envelope, with Retry-After
//	"429"            a refusal by the limit
//	anything else:   "<status> <code>" or "error: …"
func (a answer) outcome() string {
	switch {
	case a.err != nil:
		return "error: " + a.err.Error()
	case a.status == 200 && a.header.Get("RateLimit") != "":
		return "200 counted"
	case a.status == 200:
		return "200 uncounted"
	case a.status == 503 && a.code() == "SERVICE_UNAVAILABLE" && a.header.Get("Retry-After") != "":
		return "503 envelope"
	case a.status == 429:
		return "429"
	default:
		return fmt.Sprintf("%d %q", a.status, a.code())
	}
}

// sample is one answer of the load: when it came (since the load
// started) and what it was.
type sample struct {
	at      time.Duration
	outcome string
}

// recorder keeps every instance's samples.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	by    map[string][]sample // policy → samples, in arrival order
}

func (r *recorder) add(policy, outcome string) {
	at := time.Since(r.start)
	r.mu.Lock()
	r.by[policy] = append(r.by[policy], sample{at, outcome})
	r.mu.Unlock()
}

func (r *recorder) samples(policy string) []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sample(nil), r.by[policy]...)
}

// window is what one policy's clients saw between from and to: counts by
// outcome, and the first and last answer other than "200 counted".
type window struct {
	counts      map[string]int
	first, last time.Duration // -1 when every answer was "200 counted"
	total       int
}

func (r *recorder) window(policy string, from, to time.Duration) window {
	w := window{counts: map[string]int{}, first: -1, last: -1}
	for _, s := range r.samples(policy) {
		if s.at < from || s.at > to {
			continue
		}
		w.total++
		w.counts[s.outcome]++
		if s.outcome != "200 counted" {
			if w.first < 0 {
				w.first = s.at
			}
			w.last = s.at
		}
	}
	return w
}

func (w window) String() string {
	var keys []string
	for k := range w.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, w.counts[k]))
	}
	return fmt.Sprintf("%d answers {%s}", w.total, strings.Join(parts, ", "))
}

// timeline is a compact line per bucket of the policy's samples in
// [from, to]: the share of answers other than "200 counted".
func (r *recorder) timeline(policy string, from, to, bucket time.Duration) string {
	var b strings.Builder
	for at := from; at < to; at += bucket {
		w := r.window(policy, at, at+bucket-1)
		odd := w.total - w.counts["200 counted"]
		switch {
		case w.total == 0:
			b.WriteByte(' ')
		case odd == 0:
			b.WriteByte('.')
		case odd == w.total:
			b.WriteByte('#')
		default:
			b.WriteByte('+')
		}
	}
	return b.String()
}

// whoami is the status and error code of /whoami with the token.
func whoami(t *testing.T, in *stacktest.Instance, token string) (int, string) {
	t.Helper()
	r := httpt.Get(t, in.URL+"/whoami", map[string]string{"Authorization": "Bearer " + token})
	if r.StatusCode == 200 {
		return 200, ""
	}
	return r.StatusCode, r.Envelope(t).Code()
}

// usageStore is which store erp_usage says counts for the token ("redis",
// "local", …), "" when it does not answer 200.
func usageStore(in *stacktest.Instance, token string) string {
	a := get(in.URL+"/api/v1/usage", token)
	var e struct {
		Data struct {
			Store string `json:"store"`
		} `json:"data"`
	}
	if a.err != nil || a.status != 200 || json.Unmarshal(a.body, &e) != nil {
		return ""
	}
	return e.Data.Store
}

func within(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}
