// Package logs checks, against the running binary on Caddyfile.example, that
// a flood of refused requests costs a bounded number of log lines: per
// logger, message and reason the first `sample` refusals of each interval
// are logged (their own line and their access log line), the rest are one
// summary line whose counts add up, while Prometheus counts every refusal
// and served requests are logged one by one as before.
package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

const (
	masterKey      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	summaryMessage = "refusals not logged one by one"
	accessLogger   = "http.log.access"
)

// line is one JSON log line of the gateway's stderr.
type line struct {
	Level   string `json:"level"`
	Logger  string `json:"logger"`
	Msg     string `json:"msg"`
	Status  int    `json:"status"`
	Message string `json:"message"` // a summary's
	Reason  string `json:"reason"`
	Where   string `json:"where"`
	Count   int64  `json:"count"`
	Logged  int64  `json:"logged"`
	Total   int64  `json:"total"`
	Resp    struct {
		RequestID []string `json:"X-Request-Id"`
	} `json:"resp_headers"`
	raw string
}

func (l line) access() bool { return strings.HasPrefix(l.Logger, accessLogger) }

func parse(t *testing.T, s string) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line is not JSON (%v): %s", err, sc.Text())
		}
		l.raw = sc.Text()
		out = append(out, l)
	}
	return out
}

// waitLogs waits until the gateway's log stops growing: a request's access
// log line is written just after its answer is sent.
func waitLogs(in *stacktest.Instance) string {
	prev := in.Logs()
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		cur := in.Logs()
		if len(cur) == len(prev) {
			return cur
		}
		prev = cur
	}
	return prev
}

// metric reads one sample of the admin API's /metrics (0 when absent).
func metric(t *testing.T, in *stacktest.Instance, series string) int64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(string(httpt.Get(t, in.AdminURL+"/metrics", nil).Body))
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(f)
}

const (
	jwtRefused   = `erpgate_auth_decisions_total{outcome="unauthenticated",provider="jwt"}`
	keyRefused   = `erpgate_auth_decisions_total{outcome="refused",provider="api_key"}`
	rateLimited  = `erpgate_quota_decisions_total{plan="free",result="rate_limited",store="memory"}`
	floodWorkers = 8
)

// kind is one kind of refused request in the flood.
type kind struct {
	name string
	n    int
	do   func(t *testing.T, i int) *httpt.Response
	ok   map[int]bool // the statuses it may get
}

// run sends k.n requests from floodWorkers clients and counts the statuses.
func (k kind) run(t *testing.T) map[int]int64 {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int64{}
	var wg sync.WaitGroup
	for w := range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < k.n; i += floodWorkers {
				resp := k.do(t, i)
				if !k.ok[resp.StatusCode] {
					t.Errorf("%s %d: %d %s", k.name, i, resp.StatusCode, resp.Body)
					return
				}
				mu.Lock()
				got[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return got
}

// TestRefusalFloodLogsAreBounded floods the edge with 5,000 bad tokens,
// 1,000 bad API keys, 1,000 cross-company requests, 1,000 requests over a
// rate limit and 300 bad logins. Before the refusal log (main at 2f19c82)
// every refused request wrote one or two lines, about 1 KB (16,000 lines,
// 8 MB here); now the whole flood writes at most 2 × sample lines and one
// summary per reason, the summaries account for every refusal, Prometheus
// counts each one, and the served requests still have a line each.
func TestRefusalFloodLogsAreBounded(t *testing.T) {
	t.Parallel()
	const sample = 5
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_MASTER_KEY":           masterKey,
		"ERP_REFUSAL_LOG_SAMPLE":   strconv.Itoa(sample),
		"ERP_REFUSAL_LOG_INTERVAL": "1h", // one window for the whole flood: its summary comes at shutdown
	}})
	alice := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex") // globex: plan free, 60/m
	u := in.URL + "/api/v2/invoices?limit=1"
	mark := len(waitLogs(in))
	jwt0, key0, rate0 := metric(t, in, jwtRefused), metric(t, in, keyRefused), metric(t, in, rateLimited)

	// The first refusal is logged at once: its own line and its access log line.
	single := httpt.Get(t, u, demoauth.Bearer("a-single-bad-token"))
	if single.StatusCode != 401 {
		t.Fatalf("bad token: %d %s", single.StatusCode, single.Body)
	}
	var own, acc bool
	for _, l := range parse(t, waitLogs(in)[mark:]) {
		own = own || (l.Msg == "access token refused" && l.Logger == "http.authentication.providers.erp_jwt")
		acc = acc || (l.access() && l.Status == 401 && len(l.Resp.RequestID) == 1 && l.Resp.RequestID[0] == single.Header.Get("X-Request-ID"))
	}
	if !own || !acc {
		t.Fatalf("a single refused token: its line logged %v, its access log line %v", own, acc)
	}

	status := func(s ...int) map[int]bool {
		m := map[int]bool{}
		for _, v := range s {
			m[v] = true
		}
		return m
	}
	kinds := []kind{
		{"bad bearer tokens", 5000, func(t *testing.T, i int) *httpt.Response {
			return httpt.Get(t, u, demoauth.Bearer(fmt.Sprintf("flood-%05d-not-a-token", i)))
		}, status(401)},
		{"bad API keys", 1000, func(t *testing.T, i int) *httpt.Response {
			return httpt.Get(t, u, map[string]string{"X-API-Key": fmt.Sprintf("erp_live_%012d_%s", i, strings.Repeat("k", 43))})
		}, status(401)},
		{"cross-company requests", 1000, func(t *testing.T, i int) *httpt.Response {
			return httpt.Get(t, u+"&company_id=globex", demoauth.Bearer(alice.Access))
		}, status(403)},
		{"requests over the rate limit", 1000, func(t *testing.T, i int) *httpt.Response {
			return httpt.Get(t, u, demoauth.Bearer(bob.Access))
		}, status(200, 429)},
		{"bad logins", 300, func(t *testing.T, i int) *httpt.Response {
			return httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": "nobody@acme.test", "password": "wrong"}), nil)
		}, status(401, 429)},
	}
	got := map[string]map[int]int64{}
	refused, served := int64(1), int64(0) // the single one
	for _, k := range kinds {
		got[k.name] = k.run(t)
		for s, n := range got[k.name] {
			if s < 400 {
				served += n
			} else {
				refused += n
			}
		}
	}

	// Prometheus counts every refusal.
	if d := metric(t, in, jwtRefused) - jwt0; d != 5001 {
		t.Errorf("erpgate_auth_decisions_total counted %d refused tokens, want 5001", d)
	}
	if d := metric(t, in, keyRefused) - key0; d != 1000 {
		t.Errorf("erpgate_auth_decisions_total counted %d refused API keys, want 1000", d)
	}
	if d, want := metric(t, in, rateLimited)-rate0, got["requests over the rate limit"][429]; d != want || want < 900 {
		t.Errorf("erpgate_quota_decisions_total counted %d rate-limited requests, the clients got %d 429s", d, want)
	}

	running := waitLogs(in)
	in.Stop() // the config unloads: the summaries of the open windows are written
	all := in.Logs()
	flood := parse(t, all[mark:])
	shutdown := len(parse(t, all[len(running):]))

	// Count what the flood wrote: every line but the served requests' access
	// lines and the shutdown's own messages.
	var lines, bytes int
	var servedLines int64
	type skey struct{ logger, message, reason string }
	sums := map[skey]line{}
	own2 := map[skey]int64{}
	for i, l := range flood {
		switch {
		case l.access() && l.Status < 400:
			servedLines++
			continue
		case l.Msg == summaryMessage:
			k := skey{l.Logger, l.Message, l.Reason}
			if _, dup := sums[k]; dup {
				t.Errorf("two summaries of %+v in one window", k)
			}
			sums[k] = l
		case i >= len(flood)-shutdown:
			continue // the shutdown's own lines
		case !l.access():
			own2[skey{l.Logger, l.Msg, ""}]++
		}
		lines++
		bytes += len(l.raw) + 1
	}
	if servedLines != served {
		t.Errorf("%d access log lines of served requests, want one for each of the %d", servedLines, served)
	}
	// At most 2 × sample + 1 lines per reason flooded (its own lines, its
	// access log lines, a summary), each with a summary here: jwt
	// malformed, api_key inactive, authz query, quota rate_limited; the
	// auth service samples its own lines (login failed unknown_user, login
	// throttled account_limit and address_limit) apart from its refusals'
	// access log lines (request refused UNAUTHENTICATED and RATE_LIMITED).
	// One more reason is allowed that stayed within its sample. About 1 KB
	// a line.
	reasons := max(9, len(sums)+1)
	maxLines := reasons * (2*sample + 1)
	maxBytes := maxLines * 1200
	t.Logf("%d refused requests wrote %d lines, %d bytes (%.3f lines, %.1f bytes per refusal); %d summaries; %d served requests, %d access log lines",
		refused, lines, bytes, float64(lines)/float64(refused), float64(bytes)/float64(refused), len(sums), served, servedLines)
	if lines > maxLines || bytes > maxBytes {
		t.Errorf("the flood of %d refusals wrote %d lines, %d bytes: want at most %d lines, %d bytes", refused, lines, bytes, maxLines, maxBytes)
	}
	for k, n := range own2 { // a message has a window per reason
		reasons := int64(0)
		for s := range sums {
			if s.logger == k.logger && s.message == k.message {
				reasons++
			}
		}
		if n > sample*max(reasons, 1) {
			t.Errorf("%d lines %+v (%d reasons), want at most %d per reason", n, k, reasons, sample)
		}
	}

	// The summaries account for every refusal of their reason.
	want := []struct {
		key   skey
		total int64
	}{
		{skey{"http.authentication.providers.erp_jwt", "access token refused", "malformed"}, 5001},
		{skey{"http.authentication.providers.erp_api_key", "API key refused", "inactive"}, 1000},
		{skey{"http.handlers.erp_authz", "cross-company request refused", "query"}, 1000},
		{skey{"http.handlers.erp_quota", "erp_quota: refused", "rate_limited"}, got["requests over the rate limit"][429]},
	}
	for _, w := range want {
		s, ok := sums[w.key]
		if !ok {
			t.Errorf("no summary of %+v; summaries: %v", w.key, sums)
			continue
		}
		if s.Total != w.total || s.Logged != sample || s.Count != w.total-sample {
			t.Errorf("summary of %+v: total %d, logged %d, count %d; want total %d, logged %d, count %d", w.key, s.Total, s.Logged, s.Count, w.total, sample, w.total-sample)
		}
	}
	// Every bad login is a line of its own or counted in a summary's count:
	// a reason with no more refusals than the sample (a busy machine's few
	// "hashing busy" ones, say) has no summary at all.
	loginLine := func(logger, msg string) bool {
		// (a busy machine may refuse one before its hash: hashing busy, 429)
		return logger == "erp" && (msg == "login failed" || msg == "login throttled" || msg == "login refused: password hashing busy")
	}
	var logins, loginAnswers int64
	for k, n := range own2 {
		if loginLine(k.logger, k.message) {
			logins += n
		}
	}
	for k, s := range sums {
		if s.Logged > sample || s.Count != s.Total-s.Logged {
			t.Errorf("summary of %+v: %s", k, s.raw)
		}
		switch {
		case loginLine(k.logger, k.message):
			logins += s.Count
		case k.logger == "erp" && k.message == "request refused":
			loginAnswers += s.Total
		}
	}
	if logins != 300 || loginAnswers != 300 {
		t.Errorf("login summaries total %d lines and %d access log lines, want the 300 bad logins each", logins, loginAnswers)
	}
}

// Summaries come while the gateway runs, once a window has ended; a second
// window logs its first refusals afresh.
func TestRefusalSummaryEachInterval(t *testing.T) {
	t.Parallel()
	const sample, n = 3, 40
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_MASTER_KEY":           masterKey,
		"ERP_REFUSAL_LOG_SAMPLE":   strconv.Itoa(sample),
		"ERP_REFUSAL_LOG_INTERVAL": "1s",
	}})
	u := in.URL + "/api/v2/invoices?limit=1"
	mark := len(waitLogs(in))
	for i := range n {
		if r := httpt.Get(t, u, map[string]string{"X-API-Key": "not-a-key-" + strconv.Itoa(i)}); r.StatusCode != 401 {
			t.Fatalf("bad key: %d %s", r.StatusCode, r.Body)
		}
	}
	// Wait (bounded) until the summaries stand for every refusal.
	var logged, counted, summaries, accessLines int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		logged, counted, summaries, accessLines = 0, 0, 0, 0
		for _, l := range parse(t, in.Logs()[mark:]) {
			switch {
			case l.Msg == "API key refused":
				logged++
			case l.Msg == summaryMessage && l.Message == "API key refused":
				counted += l.Count
				summaries++
			case l.access() && l.Status == 401:
				accessLines++
			}
		}
		if (summaries > 0 && logged+counted == n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Each window: its first `sample` logged (with their access log
	// lines), one summary line for the rest.
	if summaries == 0 || logged+counted != n || logged < sample || logged > sample*(summaries+1) || accessLines != logged {
		t.Fatalf("%d refusals: %d logged (%d access log lines), %d counted in %d summaries", n, logged, accessLines, counted, summaries)
	}
}

// With `access_log all` every refused request keeps its access log line;
// only erpgate's own lines are sampled.
func TestAccessLogAll(t *testing.T) {
	t.Parallel()
	const sample, n = 3, 30
	example, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "interval {$ERP_REFUSAL_LOG_INTERVAL:1m}\n"
	if !strings.Contains(string(example), anchor) {
		t.Fatal("Caddyfile.example has no refusal_log interval")
	}
	cfg := strings.Replace(string(example), anchor, anchor+"\t\t\taccess_log all\n", 1)
	in := stacktest.Start(t, stacktest.Options{Config: cfg, Env: map[string]string{
		"ERP_MASTER_KEY": masterKey, "ERP_REFUSAL_LOG_SAMPLE": strconv.Itoa(sample), "ERP_REFUSAL_LOG_INTERVAL": "1h",
	}})
	mark := len(waitLogs(in))
	for i := range n {
		if r := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", demoauth.Bearer("bad-token-"+strconv.Itoa(i))); r.StatusCode != 401 {
			t.Fatalf("bad token: %d %s", r.StatusCode, r.Body)
		}
	}
	var own, access int
	for _, l := range parse(t, waitLogs(in)[mark:]) {
		switch {
		case l.Msg == "access token refused":
			own++
		case l.access() && l.Status == 401:
			access++
		}
	}
	if own != sample || access != n {
		t.Fatalf("%d bad tokens: %d lines of their own (want %d), %d access log lines (want %d)", n, own, sample, access, n)
	}
}
