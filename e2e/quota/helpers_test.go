// Package quota drives erp_quota and erp_usage in the running binary: the
// RateLimit headers and 429 envelopes, exact limits across two and three
// edge instances on one Redis, Redis stopped and restarted under load with
// each on_redis_down policy, and per-company overrides changed through the
// admin API.
package quota

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// caddyfile is Caddyfile.example's structure with erp_quota (the given
// block) between erp_auth and reverse_proxy, and /api/v1/usage.
func caddyfile(quota string) string {
	return `{
	admin {$ERP_ADMIN}
	metrics
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX:erpgate:}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
		backend invoices {
			version v1 http://{$ERP_DEMO_LISTEN}/v1 {
				deprecated 2026-01-01
				sunset 2099-06-30
			}
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
		handle /api/* {
			route {
				erp_version
				erp_auth
				erp_quota {
` + quota + `
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
}

// shared starts n instances on one Postgres and one Redis (its own prefix).
func shared(t *testing.T, n int, quota string) []*stacktest.Instance {
	t.Helper()
	pg := testenv.Postgres(t)
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{
		"ERP_POSTGRES_URL": pg,
		"ERP_REDIS_URL":    redisURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   testMasterKey,
	}
	var out []*stacktest.Instance
	for range n {
		out = append(out, stacktest.Start(t, stacktest.Options{Config: caddyfile(quota), Env: env}))
	}
	return out
}

// client is a keep-alive client for load (httpt's has no pooling limits
// worth having here).
var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

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

type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Errors  []struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Context map[string]any `json:"context"`
	} `json:"errors"`
}

func (a answer) envelope(t *testing.T) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("not an envelope (%d): %.300s", a.status, a.body)
	}
	return e
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	e := a.envelope(t)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// hammer sends clients×perClient requests (clients concurrent, spread over
// urls) and counts the answers by status.
func hammer(t *testing.T, urls []string, token string, clients, perClient int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for range perClient {
				a := get(urls[c%len(urls)], token)
				mu.Lock()
				if a.err != nil {
					counts[-1]++
				} else {
					counts[a.status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

type usage struct {
	CompanyID string `json:"company_id"`
	Plan      string `json:"plan"`
	Store     string `json:"store"`
	Rate      *struct {
		Policy    string `json:"policy"`
		Limit     int64  `json:"limit"`
		Used      int64  `json:"used"`
		Remaining int64  `json:"remaining"`
	} `json:"rate"`
	Quota *struct {
		Limit       int64     `json:"limit"`
		Used        int64     `json:"used"`
		PeriodStart time.Time `json:"period_start"`
		PeriodEnd   time.Time `json:"period_end"`
	} `json:"quota"`
	DeprecatedCalls []struct {
		Backend string `json:"backend"`
		Version string `json:"version"`
		Calls   int64  `json:"calls"`
	} `json:"deprecated_calls"`
}

func getUsage(t *testing.T, base, token string) usage {
	t.Helper()
	resp := httpt.Get(t, base+"/api/v1/usage", demoauth.Bearer(token))
	env := resp.Envelope(t)
	var u usage
	if resp.StatusCode != 200 || json.Unmarshal(env.Data, &u) != nil {
		t.Fatalf("usage: %d %s", resp.StatusCode, resp.Body)
	}
	return u
}

// eventually polls f until it holds or d passed.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// metric reads one sample from the instance's /metrics (admin API).
func metric(t *testing.T, in *stacktest.Instance, line string) string {
	t.Helper()
	resp := httpt.Get(t, in.AdminURL+"/metrics", nil)
	for l := range strings.SplitSeq(string(resp.Body), "\n") {
		if strings.HasPrefix(l, line+" ") {
			return strings.TrimPrefix(l, line+" ")
		}
	}
	return ""
}
