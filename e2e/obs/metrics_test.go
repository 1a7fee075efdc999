package obs

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// scrape is the admin API's /metrics: each sample's value by its line's
// name and labels, as written.
func scrape(t *testing.T, in *stacktest.Instance) map[string]float64 {
	t.Helper()
	resp := httpt.Get(t, in.AdminURL+"/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(resp.Body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// metricNames are the names of the samples (histograms' _bucket, _sum and
// _count each).
func metricNames(samples map[string]float64) map[string]bool {
	names := map[string]bool{}
	for k := range samples {
		if i := strings.IndexByte(k, '{'); i >= 0 {
			k = k[:i]
		}
		names[k] = true
	}
	return names
}

func login(t *testing.T, in *stacktest.Instance, password string) *httpt.Response {
	t.Helper()
	return httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/login",
		httpt.JSON(t, map[string]string{"email": "bob@globex.test", "password": password}), nil)
}

func refresh(t *testing.T, in *stacktest.Instance, token string) *httpt.Response {
	t.Helper()
	return httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": token}), nil)
}

// TestAuthMetrics: logins by outcome, tokens issued, refreshes and reuse
// are counted at the admin API's /metrics with bounded labels (no company,
// user or address); the dashboard and the alerting rules name only metrics
// the binary exports.
func TestAuthMetrics(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	tok := demoauth.Login(t, in.URL, "bob@globex.test", "globex") // also waits for the service
	// traffic for the edge's metrics: a proxied request and a refusal
	if resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", demoauth.Bearer(tok.Access)); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s", resp.StatusCode, resp.Body)
	}
	httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", nil)
	before := scrape(t, in)

	if resp := login(t, in, "wrong-password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad password: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := login(t, in, demoauth.Password); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Body)
	}
	resp := refresh(t, in, tok.Refresh)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, resp.Body)
	}
	// the rotated token again: reuse, the family is revoked
	if resp := refresh(t, in, tok.Refresh); resp.StatusCode != http.StatusUnauthorized || resp.Envelope(t).Code() != "TOKEN_REVOKED" {
		t.Fatalf("reused refresh token: %d %s", resp.StatusCode, resp.Body)
	}
	// bad input: not a refresh token at all
	if resp := refresh(t, in, "nonsense"); resp.StatusCode != http.StatusUnauthorized || resp.Envelope(t).Code() != "UNAUTHENTICATED" {
		t.Fatalf("malformed refresh token: %d %s", resp.StatusCode, resp.Body)
	}

	after := scrape(t, in)
	for sample, want := range map[string]float64{
		`erp_auth_logins_total{outcome="failed"}`:            1,
		`erp_auth_logins_total{outcome="succeeded"}`:         1,
		`erp_auth_tokens_issued_total{type="login"}`:         1,
		`erp_auth_refreshes_total{outcome="rotated"}`:        1,
		`erp_auth_refreshes_total{outcome="reuse_detected"}`: 1,
		`erp_auth_refreshes_total{outcome="refused"}`:        1,
		`erp_auth_refresh_reuse_detected_total`:              1,
		`erp_auth_tokens_issued_total{type="access"}`:        1, // the refresh's pair
		`erp_auth_tokens_issued_total{type="refresh"}`:       1,
		`erp_auth_logins_total{outcome="throttled"}`:         0,
		`erp_auth_mfa_total{outcome="failed"}`:               0,
	} {
		got, ok := after[sample]
		if !ok {
			t.Errorf("/metrics lacks %s", sample)
			continue
		}
		if d := got - before[sample]; d != want {
			t.Errorf("%s went up by %v, want %v", sample, d, want)
		}
	}
	if after[`erp_auth_tokens_issued_total{type="access"}`] < 1 || after[`erp_auth_tokens_issued_total{type="refresh"}`] < 1 {
		t.Error("the first select-company issued no access or refresh token by the metrics")
	}
	if _, ok := after[`erp_auth_key_rotations_total{purpose="access"}`]; !ok {
		t.Error("/metrics lacks erp_auth_key_rotations_total")
	}
	for k := range after {
		if strings.HasPrefix(k, "erp_auth_") && (strings.Contains(k, "globex") || strings.Contains(k, "bob") || strings.Contains(k, "127.0.0.1")) {
			t.Errorf("an auth metric is labelled with a company, user or address: %s", k)
		}
	}

	t.Run("dashboard and alerts", func(t *testing.T) {
		exported := metricNames(after)
		for _, e := range deployExprs(t) {
			names := promqlMetricNames(e.expr)
			if len(names) == 0 {
				t.Errorf("%s: no metric in %q", e.where, e.expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("%s: %s is not exported by the binary (expression %q)", e.where, n, e.expr)
				}
			}
		}
	})
}

// deployExpr is one PromQL expression of deploy/ and where it is.
type deployExpr struct{ where, expr string }

// deployExprs are the dashboard's target expressions and the alerting
// rules' expressions.
func deployExprs(t *testing.T) []deployExpr {
	t.Helper()
	root := stacktest.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "erpgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/erpgate.json: %v", err)
	}
	var out []deployExpr
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, deployExpr{"dashboard panel " + strconv.Quote(p.Title), tg.Expr})
		}
	}
	if len(out) < 10 {
		t.Fatalf("the dashboard has %d expressions", len(out))
	}
	rules, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range alertExprs(string(rules)) {
		out = append(out, deployExpr{"alert " + r[0], r[1]})
		n++
	}
	if n < 5 {
		t.Fatalf("alerts.yml has %d rules", n)
	}
	return out
}

// alertExprs reads alerts.yml's rules as (alert, expr) pairs: `expr:` on
// one line, or a `|` block indented below it. (The file's full syntax is
// promtool's to check: TestPromtoolCheckRules.)
func alertExprs(yml string) [][2]string {
	var out [][2]string
	lines := strings.Split(yml, "\n")
	alert := ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if v, ok := strings.CutPrefix(l, "- alert:"); ok {
			alert = strings.TrimSpace(v)
			continue
		}
		v, ok := strings.CutPrefix(l, "expr:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "|" || v == ">" {
			indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
			var block []string
			for i+1 < len(lines) {
				next := lines[i+1]
				if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
					break
				}
				block = append(block, strings.TrimSpace(next))
				i++
			}
			v = strings.Join(block, " ")
		}
		out = append(out, [2]string{alert, v})
	}
	return out
}

var (
	promStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promBraces  = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promLabels  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	// PromQL's functions, aggregations, keywords and operators by name:
	// anything else left is a metric name.
	promWords = map[string]bool{}
)

func init() {
	for _, w := range strings.Fields(`sum min max avg count stddev stdvar topk bottomk quantile count_values group limitk limit_ratio
		rate irate increase delta idelta deriv predict_linear histogram_quantile histogram_count histogram_sum histogram_avg
		histogram_fraction histogram_stddev histogram_stdvar abs absent absent_over_time ceil floor round clamp clamp_min clamp_max
		changes resets exp ln log2 log10 sqrt sort sort_desc sort_by_label sort_by_label_desc time timestamp vector scalar label_replace label_join
		avg_over_time min_over_time max_over_time sum_over_time count_over_time quantile_over_time stddev_over_time stdvar_over_time
		last_over_time present_over_time mad_over_time day_of_month day_of_week day_of_year days_in_month hour minute month year
		and or unless bool offset by without on ignoring group_left group_right inf nan e`) {
		promWords[w] = true
	}
}

// promqlMetricNames are the metric names an expression selects: what is
// left once strings, label matchers, ranges, grouping lists, numbers and
// PromQL's own words are taken out.
func promqlMetricNames(expr string) []string {
	e := promStrings.ReplaceAllString(expr, `""`)
	e = promLabels.ReplaceAllString(e, " ")
	for promBraces.MatchString(e) {
		e = promBraces.ReplaceAllString(e, " ")
	}
	var out []string
	for _, m := range promIdent.FindAllStringIndex(e, -1) {
		w := e[m[0]:m[1]]
		if m[0] > 0 && (e[m[0]-1] >= '0' && e[m[0]-1] <= '9' || e[m[0]-1] == '.') {
			continue // a number's exponent or unit (1e3)
		}
		if promWords[strings.ToLower(w)] {
			continue
		}
		out = append(out, w)
	}
	return out
}

func TestPromqlMetricNames(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]string{
		`sum by (backend, version) (rate(erpgate_backend_requests_total{code=~"5..", x="a b"}[5m])) / 1e3`:     "erpgate_backend_requests_total",
		`histogram_quantile(0.95, sum by (le) (rate(a_bucket[5m]))) > 2 and on() max(b) < time() - 45 * 86400`: "a_bucket b",
		`max(erpgate_quota_redis_fallback_handlers) > 0`:                                                       "erpgate_quota_redis_fallback_handlers",
		`sum without (instance) (increase(x:y_total[1h] offset 5m))`:                                           "x:y_total",
	} {
		if got := strings.Join(promqlMetricNames(expr), " "); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}

// TestPromtoolCheckRules: `promtool check rules` passes on alerts.yml and
// on the dashboard's expressions (as recording rules). promtool comes from
// Debian's prometheus package (`make test` installs it:
// scripts/promtool.sh), or ERP_TEST_PROMTOOL.
func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	promtool := os.Getenv("ERP_TEST_PROMTOOL")
	if promtool == "" {
		p, err := exec.LookPath("promtool")
		if err != nil {
			t.Fatal("promtool is not installed: run `make promtool` (scripts/promtool.sh installs Debian's prometheus package) or set ERP_TEST_PROMTOOL")
		}
		promtool = p
	}
	root := stacktest.RepoRoot()
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range deployExprs(t) {
		if !strings.HasPrefix(e.where, "dashboard") {
			continue
		}
		q, _ := json.Marshal(e.expr) // a JSON string is a YAML string
		b.WriteString("      - record: dashboard:expr" + strconv.Itoa(i) + "\n        expr: " + string(q) + "\n")
	}
	dash := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(dash, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join(root, "deploy", "prometheus", "alerts.yml"), dash).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules said:\n%s", out)
	}
	// and it does fail on a broken expression
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m])\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", bad).CombinedOutput(); err == nil {
		t.Fatalf("promtool accepted a broken expression:\n%s", out)
	}
}
