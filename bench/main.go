// Command bench measures erpgate's throughput against plain Caddy
// reverse_proxy in the same run. It starts two gateways: one without Redis
// (the demo backend itself, "direct"; a plain `reverse_proxy` route,
// "plain"; and the erpgate routes with the in-memory quota store) and one
// with Redis (its own demo backend, its own plain route, and the routes with
// the Redis quota store: the erp app's Redis is per process), and two with
// the invoices backend's business events on and off (writes and a read
// through the full chain, each process with its own backend and plain
// reverse_proxy; `-only events` runs these alone), and one for GraphQL
// against REST (graphql.go: one query for 20 invoices with their customers
// against the two REST requests a client makes for them; `-only graphql`).
// It loads each route in turn with the same client and prints req/s, p50
// and p99, each route's ratio to the plain route of its own process, and
// the CPU time the route's process used per request, and draws req/s and p99
// per route next to their baselines as a PNG (-png, plot.go). It owns nothing beyond
// one run and drives the built binary over HTTP: it imports nothing of ours
// and must not import Caddy (it lives outside cmd/).
//
//	go run ./bench -gateway bin/gateway            (make bench)
//
// The load generator is wrk when installed, else a built-in Go client.
// In each round every target runs right next to its baseline (plain
// reverse_proxy in the same process), the pair's order alternating by
// round, so the host's drift hits both sides of a ratio alike; the table
// shows each target's median run, and as ratio the median over rounds of
// its req/s divided by that of the baseline run paired with it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var onlyWords []string

// pngPath is where the picture of the table goes (-png).
var pngPath string

// pids are the gateway processes by the ports they serve.
var pids = map[int]int{}

type target struct {
	name string
	port int
	path string
	hdr  map[string]string
	base string // the baseline it is compared with: plain reverse_proxy in the same process
	// optIn targets run only when -only names them.
	optIn bool
	// method and body of each request: GET without a body when empty.
	method, body string
	// goOnly targets are loaded with the built-in Go client whatever
	// -loader says: those whose iteration wrk cannot make, and their
	// baseline, so that a ratio compares runs of one load generator.
	goOnly bool
	// iterate, when set, is one iteration of the target in place of one
	// request to path: what a client does for one result (two requests in
	// a row, an answer checked). buf is the caller's, reused.
	iterate func(ctx context.Context, c *http.Client, tg target, buf *bytes.Buffer) error
}

// url is the target's address.
func (tg target) url() string { return fmt.Sprintf("http://127.0.0.1:%d%s", tg.port, tg.path) }

type result struct {
	rps      float64 // iterations (requests, for most targets) per second
	p50, p99 time.Duration
	errors   int64
	// cpuPerOp is the CPU time the process serving the target used per
	// iteration (its in-process demo backend included), 0 when unknown.
	cpuPerOp time.Duration
}

func main() {
	gateway := flag.String("gateway", "bin/gateway", "gateway binary")
	duration := flag.Duration("duration", 8*time.Second, "measured time per target and round")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured load before each target's first round")
	conns := flag.Int("connections", 32, "concurrent connections")
	rounds := flag.Int("rounds", 5, "rounds (median is reported)")
	path := flag.String("path", "/v1/invoices?limit=10", "backend path loaded")
	loader := flag.String("loader", "auto", "wrk, go or auto")
	only := flag.String("only", "", "run only the targets whose name contains one of these comma-separated words (plus the baseline); \"floor\" adds the reference route without erpgate modules")
	redisURL := flag.String("redis", envOr("ERP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for the quota targets")
	flag.StringVar(&pngPath, "png", "bench/results.png", "where to write the picture of req/s and p99 per route (empty: none)")
	flag.Parse()

	onlyWords = strings.FieldsFunc(*only, func(r rune) bool { return r == ',' })
	if *only == "export" { // a mode of its own: export.go
		if err := runExport(*gateway); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*gateway, *duration, *warmup, *conns, *rounds, *path, *loader, *redisURL); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// startGateway runs the gateway binary with a Caddyfile; stop it with the
// returned func. Its pid goes to pids under each of the ports it serves
// (for the CPU time of a target's process).
func startGateway(gateway, dir, name, cfg string, ports ...int) (func(), error) {
	cfgPath := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(gateway, "run", "--config", cfgPath, "--adapter", "caddyfile")
	home := filepath.Join(dir, name)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	for _, p := range ports {
		pids[p] = cmd.Process.Pid
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	}, nil
}

func run(gateway string, duration, warmup time.Duration, conns, rounds int, path, loader, redisURL string) error {
	ports := map[string]int{"admin": freePort(), "demo": freePort(), "plain": freePort(), "envelope": freePort(), "auth": freePort(), "floor": freePort(),
		"quota": freePort(), "full": freePort(), "login": freePort(), "login2": freePort(), "admin2": freePort(), "demo2": freePort(), "plain2": freePort(), "quota2": freePort(), "full2": freePort(), "cached": freePort(), "dataplane": freePort(), "traced": freePort()}
	for _, ev := range []string{"ev", "noev", "gql"} {
		for _, k := range []string{"admin", "demo", "plain", "login", "full"} {
			ports[k+"-"+ev] = freePort()
		}
	}
	portsOf := func(names ...string) []int {
		var out []int
		for _, n := range names {
			out = append(out, ports[n])
		}
		return out
	}
	dir, err := os.MkdirTemp("", "erpgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stop, err := startGateway(gateway, dir, "gateway", caddyfile(ports),
		portsOf("demo", "plain", "envelope", "auth", "floor", "quota", "full", "login", "cached", "dataplane", "traced")...)
	if err != nil {
		return err
	}
	defer stop()
	// The Redis-backed quota needs Redis for the whole config: a second
	// process, with its own backend and its own plain reverse_proxy, so that
	// each erpgate route is compared with plain Caddy in the same process
	// (two busy Go processes on few cores pay for each other's scheduling).
	stop2, err := startGateway(gateway, dir, "gateway-redis", caddyfileRedis(ports, redisURL),
		portsOf("demo2", "plain2", "quota2", "full2", "login2")...)
	if err != nil {
		return err
	}
	defer stop2()
	// Events on and off: a process each (the backend's events block is
	// the erp app's), with its own backend and plain reverse_proxy, so that
	// the writes these targets make pile up in neither the other targets'
	// backends nor each other's.
	for _, ev := range []string{"ev", "noev"} {
		stop, err := startGateway(gateway, dir, "gateway-"+ev, caddyfileEvents(ports, ev),
			portsOf("demo-"+ev, "plain-"+ev, "login-"+ev, "full-"+ev)...)
		if err != nil {
			return err
		}
		defer stop()
	}
	// GraphQL against REST: a process of its own, started when one of its
	// targets is selected.
	withGraphQL := false
	for _, n := range graphqlNames {
		withGraphQL = withGraphQL || selected(n, false)
	}
	if withGraphQL {
		stop, err := startGateway(gateway, dir, "gateway-graphql", caddyfileGraphQL(ports),
			portsOf("demo-gql", "plain-gql", "login-gql", "full-gql")...)
		if err != nil {
			return err
		}
		defer stop()
	}
	hdr := map[string]string{"X-ERP-Company-ID": "acme"}
	const plain, plain2 = "plain reverse_proxy", "plain (redis process)"
	targets := []target{
		{name: "direct", port: ports["demo"], path: path, hdr: hdr, base: plain},
		{name: plain, port: ports["plain"], path: path, hdr: hdr, base: plain},
		{name: "erpgate: envelope", port: ports["envelope"], path: path, hdr: hdr, base: plain},
	}
	if err := waitFor(targets[0]); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
		return fmt.Errorf("gateway not ready: %w\n%s", err, b)
	}
	if err := waitPort(ports["quota2"]); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "gateway-redis.log"))
		return fmt.Errorf("redis gateway not ready: %w\n%s", err, b)
	}
	token, err := login(ports["login"])
	if err != nil {
		return err
	}
	token2, err := login(ports["login2"])
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "gateway-redis.log"))
		return fmt.Errorf("redis gateway: %w\n%s", err, b)
	}
	bearer := map[string]string{"Authorization": "Bearer " + token}
	bearer2 := map[string]string{"Authorization": "Bearer " + token2}
	v2 := "/api" + strings.Replace(path, "/v1/", "/v2/", 1)
	targets = append(targets,
		target{name: "erpgate: envelope+auth", port: ports["auth"], path: path, hdr: bearer, base: plain},
		target{name: "floor: caddy alone", port: ports["floor"], path: path, hdr: bearer, base: plain, optIn: true},
		target{name: "+quota (memory)", port: ports["quota"], path: path, hdr: bearer, base: plain},
		target{name: "full chain (memory)", port: ports["full"], path: v2, hdr: bearer, base: plain},
		target{name: cachedName, port: ports["cached"], path: v2, hdr: bearer, base: plain},
		target{name: tracedName, port: ports["traced"], path: v2, hdr: bearer, base: plain},
		target{name: plain2, port: ports["plain2"], path: path, hdr: hdr, base: plain2},
		target{name: "+quota (redis)", port: ports["quota2"], path: path, hdr: bearer2, base: plain2},
		target{name: "full chain (redis)", port: ports["full2"], path: v2, hdr: bearer2, base: plain2},
	)
	if selected(dataPlaneName, false) { // its site is in the config only then (dataPlaneSites)
		targets = append(targets, target{name: dataPlaneName, port: ports["dataplane"], path: v2, hdr: bearer, base: plain})
	}
	evTargets, err := eventTargets(ports, dir)
	if err != nil {
		return err
	}
	targets = append(targets, evTargets...)
	if withGraphQL {
		gqlTargets, err := graphqlTargets(ports, dir, path)
		if err != nil {
			return err
		}
		targets = append(targets, gqlTargets...)
	}
	if err := checkCacheHit(ports["cached"], v2, bearer); err != nil {
		return err
	}
	for _, tg := range targets {
		if err := waitFor(tg); err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
			return fmt.Errorf("%s not ready: %w\n%s", tg.name, err, b)
		}
	}
	// Without -only every target runs but the opt-in ones; with it, the
	// targets it names and their baselines.
	keep := map[string]bool{}
	for _, tg := range targets {
		if selected(tg.name, tg.optIn) {
			keep[tg.name], keep[tg.base] = true, true
		}
	}
	if keep[gqlName] || keep[restName] { // one is measured against the other
		keep[gqlName], keep[restName] = true, true
	}
	var kept []target
	for _, tg := range targets {
		if keep[tg.name] {
			kept = append(kept, tg)
		}
	}
	targets = kept
	if loader == "auto" {
		loader = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			loader = "wrk"
		}
	}
	fmt.Printf("erpgate bench: %d connections, %s x %d rounds per target, loader %s, GOMAXPROCS of the machine: %d cores\n",
		conns, duration, rounds, loader, numCPU())
	results := make(map[string][]result)
	ratios := make(map[string][]float64) // per pair: target / its baseline run next to it
	var gqlVsRest []float64              // per round: graphql's iterations/s / rest-2calls'
	byName := make(map[string]target)
	for _, tg := range targets {
		byName[tg.name] = tg
		if _, err := load(loader, tg, warmup, conns); err != nil {
			return err
		}
	}
	// Each target is measured next to its baseline, in pairs: the host's
	// speed drifts (other tenants, steal), and a baseline measured a minute
	// earlier would carry that drift into the ratio. The pair's order
	// alternates by round, so neither side always runs first.
	for r := range rounds {
		for _, tg := range targets {
			if tg.name == tg.base {
				continue
			}
			pair := []target{byName[tg.base], tg}
			if r%2 == 1 {
				pair[0], pair[1] = pair[1], pair[0]
			}
			rps := map[string]float64{}
			for _, t := range pair {
				res, err := load(loader, t, duration, conns)
				if err != nil {
					return err
				}
				results[t.name] = append(results[t.name], res)
				rps[t.name] = res.rps
				fmt.Fprintf(os.Stderr, "round %d %-24s %8.0f req/s\n", r+1, t.name, res.rps)
			}
			if b := rps[tg.base]; b > 0 {
				ratios[tg.name] = append(ratios[tg.name], rps[tg.name]/b)
			}
		}
		// graphql and rest-2calls run one after the other in each round
		if gq, rs := results[gqlName], results[restName]; len(gq) == r+1 && len(rs) == r+1 && rs[r].rps > 0 {
			gqlVsRest = append(gqlVsRest, gq[r].rps/rs[r].rps)
		}
	}
	for _, tg := range targets {
		if tg.name == tg.base {
			ratios[tg.name] = []float64{1}
		}
	}
	fmt.Println()
	fmt.Println("vs plain: the median over rounds of req/s divided by that of the plain reverse_proxy run right before or after it, in the same process")
	fmt.Println("CPU/op: the median over rounds of the CPU time of the target's gateway process (its demo backend included) per request")
	if keep[gqlName] || keep[restName] {
		fmt.Println("graphql, rest-2calls: req/s and CPU/op are per iteration (20 invoices with their customers: one GraphQL query, or two REST requests in a row)")
	}
	fmt.Println()
	fmt.Printf("| %-24s | %10s | %9s | %9s | %8s | %9s | %s |\n", "target", "req/s", "p50", "p99", "vs plain", "CPU/op", "errors")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 26), strings.Repeat("-", 12), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 11), strings.Repeat("-", 8))
	var rows []plotRow
	for _, tg := range targets {
		m := median(results[tg.name])
		rows = append(rows, plotRow{name: tg.name, base: tg.base, rps: m.rps, p99: m.p99, isBase: tg.name == tg.base})
		cpu := make([]float64, 0, len(results[tg.name]))
		for _, r := range results[tg.name] {
			cpu = append(cpu, float64(r.cpuPerOp))
		}
		fmt.Printf("| %-24s | %10.0f | %9s | %9s | %8.2f | %9s | %d |\n", tg.name, m.rps, round(m.p50), round(m.p99), medianOf(ratios[tg.name]),
			round(time.Duration(medianOf(cpu))), m.errors)
	}
	if pngPath != "" {
		for i, r := range rows {
			if len(results[r.base]) > 0 {
				b := median(results[r.base])
				rows[i].baseRPS, rows[i].baseP99 = b.rps, b.p99
			}
		}
		title := fmt.Sprintf("erpgate bench (%d connections, %d rounds, medians)", conns, rounds)
		if err := writePlot(pngPath, title, rows); err != nil {
			return err
		}
		fmt.Printf("\npicture: %s\n", pngPath)
	}
	if len(gqlVsRest) > 0 {
		fmt.Printf("\ngraphql vs rest-2calls: %.2f (median over rounds of graphql's iterations/s divided by rest-2calls' in the same round)\n", medianOf(gqlVsRest))
	}
	for _, ev := range []string{"ev", "noev"} {
		if byName["write, events on"].port != 0 || byName["write, events off"].port != 0 {
			fmt.Printf("\ngateway-%s: %s", ev, eventCounters(ports["admin-"+ev]))
		}
	}
	fmt.Println()
	return nil
}

// selected says whether -only keeps a target (its baseline is kept with
// it); without -only every target is kept but the opt-in ones.
func selected(name string, optIn bool) bool {
	if len(onlyWords) == 0 {
		return !optIn
	}
	for _, w := range onlyWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

func round(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(10 * time.Microsecond).String()
}

func median(rs []result) result {
	s := append([]result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].rps < s[j].rps })
	return s[len(s)/2]
}

func caddyfile(p map[string]int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	log {
		level ERROR
	}
	erp {
		demo on
		backend invoices {
			version v1 http://127.0.0.1:%[2]d/v1
			version v2 http://127.0.0.1:%[2]d/v2
		}
	}
}
# the backend. It does not verify the edge assertion: the baselines
# (direct, plain, floor, envelope) carry none, and every route is measured
# against the same backend work. The erpgate routes still sign (once per
# token and minute) and send one, from the cache.
http://127.0.0.1:%[2]d {
	erp_demo {
		insecure_skip_assertion
	}
}
# baseline: plain Caddy reverse_proxy
http://:%[3]d {
	reverse_proxy 127.0.0.1:%[2]d
}
# erpgate: the envelope. It removes the client's identity headers (only the
# edge states one), so the company the demo needs is set for the backend,
# as erp_authz does on the authenticated routes.
http://:%[4]d {
	erp_envelope
	reverse_proxy 127.0.0.1:%[2]d {
		header_up X-ERP-Company-ID acme
	}
	handle_errors {
		erp_envelope
	}
}
# floor (opt-in): Caddy alone doing the header work the edge's contract
# asks for on this request, with no erpgate module: the client's bearer
# token read and dropped, three handlers before reverse_proxy as erpgate's
# envelope, authentication and authz are, the five identity headers and an
# edge assertion (a fixed one, of a real one's size) sent upstream and
# X-Request-ID answered. erpgate's routes do at least this work; the gap
# between it and envelope+auth is erpgate's own.
http://:%[7]d {
	request_header -Authorization
	vars erp.floor 1
	header X-Request-ID %[9]s
	reverse_proxy 127.0.0.1:%[2]d {
		header_up X-ERP-Company-ID acme
		header_up X-ERP-User-ID 00000000-0000-4000-8000-000000000001
		header_up X-ERP-Roles admin
		header_up X-ERP-Scope "%[8]s"
		header_up X-Request-ID %[9]s
		header_up X-ERP-Assertion %[10]s
	}
}
# erpgate: envelope + authentication (erp_jwt, cached token) + authz with
# the edge assertion (cached), on the same path as plain (no erp_version
# here: the route names its backend, the assertion's audience)
http://:%[5]d {
	erp_envelope
	erp_auth {
		backend invoices
	}
	reverse_proxy 127.0.0.1:%[2]d
	handle_errors {
		erp_envelope
	}
}
%[6]s
`, p["admin"], p["demo"], p["plain"], p["envelope"], p["auth"], quotaSites(p["quota"], p["full"], p["demo"], p["login"]),
		p["floor"], floorScope, "01a22e5a-a34d-7df5-b45d-2f6d7ac5ac2b", floorAssertion) + cacheSite(p["cached"]) + dataPlaneSites(p["dataplane"], p["traced"])
}

// floorAssertion stands for the edge assertion the erpgate routes send: a
// compact JWS of the size of the one the benchmark's token gets (header,
// claims with the admin's scope, Ed25519 signature).
var floorAssertion = "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkZ2UtN0NlSHZzUTZaX1RvaHdJRkY1NjNMeV9PaDBhbTJzLTlaOVl3U2NaRmY1USIsInR5cCI6ImVycC1lZGdlK2p3dCJ9." +
	strings.Repeat("e", 464) + "." + strings.Repeat("s", 86)

// floorScope is the scope the demo's acme admin is given (the header the
// edge sends upstream for the benchmark's token).
const floorScope = "customers:read customers:write inventory:read inventory:write invoices:read invoices:write " +
	"ledger:read ledger:write products:read products:write webhooks:read webhooks:write"

// quotaSites are the routes with erp_quota: envelope+auth+quota (on the
// same path as plain), and the full chain (envelope, version, auth, quota,
// dynamic upstreams) under /api; and the auth service the benchmark logs in
// through. The limit is high enough never to refuse: the benchmark measures
// the decision's cost.
func quotaSites(quota, full, demo, login int) string {
	return fmt.Sprintf(`
http://:%[4]d {
	erp_envelope
	erp_authsvc
	handle_errors {
		erp_envelope
	}
}
http://:%[1]d {
	erp_envelope
	erp_auth {
		backend invoices
	}
	erp_quota {
		plan standard 1000000000/m
	}
	reverse_proxy 127.0.0.1:%[3]d
	handle_errors {
		erp_envelope
	}
}
http://:%[2]d {
	erp_envelope
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan standard 1000000000/m
		}
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, quota, full, demo, login)
}

func caddyfileRedis(p map[string]int, redisURL string) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	log {
		level ERROR
	}
	erp {
		redis %[2]s
		key_prefix erpgate-bench-%[3]d:
		demo on
		backend invoices {
			version v1 http://127.0.0.1:%[4]d/v1
			version v2 http://127.0.0.1:%[4]d/v2
		}
	}
}
# this process's backend (no assertion check, as in the first process) and baseline
http://127.0.0.1:%[4]d {
	erp_demo {
		insecure_skip_assertion
	}
}
http://:%[6]d {
	reverse_proxy 127.0.0.1:%[4]d
}
%[5]s
`, p["admin2"], redisURL, os.Getpid(), p["demo2"], quotaSites(p["quota2"], p["full2"], p["demo2"], p["login2"]), p["plain2"])
}

func waitPort(port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("port %d not listening", port)
}

func waitFor(tg target) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req := tg.request(context.Background(), fmt.Sprintf("http://127.0.0.1:%d%s", tg.port, tg.path))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// load runs the load generator on tg for d and measures the CPU time its
// gateway process used meanwhile.
func load(loader string, tg target, d time.Duration, conns int) (result, error) {
	pid := pids[tg.port]
	cpu0, cpuErr := procCPU(pid)
	var (
		res result
		err error
	)
	if loader == "wrk" && !tg.goOnly && tg.iterate == nil {
		res, err = loadWrk(tg, d, conns)
	} else {
		res, err = loadGo(tg, d, conns)
	}
	if err != nil {
		return res, err
	}
	if cpu1, err := procCPU(pid); cpuErr == nil && err == nil && pid != 0 {
		if ops := res.rps * d.Seconds(); ops > 0 {
			res.cpuPerOp = time.Duration(float64(cpu1-cpu0) / ops)
		}
	}
	return res, nil
}

var (
	reReqs    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)`)
	reErrors  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func loadWrk(tg target, d time.Duration, conns int) (result, error) {
	args := []string{"-t", "2", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency"}
	for k, v := range tg.hdr {
		args = append(args, "-H", k+": "+v)
	}
	if tg.method != "" && tg.method != http.MethodGet {
		script, err := os.CreateTemp("", "erpgate-bench-*.lua")
		if err != nil {
			return result{}, err
		}
		defer os.Remove(script.Name())
		fmt.Fprintf(script, "wrk.method = %q\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", tg.method, tg.body)
		script.Close()
		args = append(args, "-s", script.Name())
	}
	args = append(args, fmt.Sprintf("http://127.0.0.1:%d%s", tg.port, tg.path))
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var res result
	m := reReqs.FindSubmatch(out)
	if m == nil {
		return result{}, fmt.Errorf("wrk output not understood: %s", out)
	}
	res.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, lm := range reLatency.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(lm[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(lm[3])]
		dur := time.Duration(v * float64(unit))
		if string(lm[1]) == "50" {
			res.p50 = dur
		} else {
			res.p99 = dur
		}
	}
	if m := reErrors.FindSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		res.errors += n
	}
	if m := reSocket.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.ParseInt(string(g), 10, 64)
			res.errors += n
		}
	}
	return res, nil
}

// loadGo is the built-in closed-loop load generator: conns goroutines, each
// with its own keep-alive connection, sending requests (or making the
// target's iterations) back to back.
func loadGo(tg target, d time.Duration, conns int) (result, error) {
	url := tg.url()
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      atomic.Int64
		firstErr  atomic.Pointer[error] // an iteration's, shown once
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			br := bufio.NewReaderSize(nil, 32<<10)
			var buf bytes.Buffer
			for ctx.Err() == nil {
				if tg.iterate != nil {
					t0 := time.Now()
					if err := tg.iterate(ctx, client, tg, &buf); err != nil {
						if ctx.Err() == nil {
							errs.Add(1)
							if firstErr.CompareAndSwap(nil, &err) {
								fmt.Fprintf(os.Stderr, "%s: %v\n", tg.name, err)
							}
						}
						continue
					}
					local = append(local, time.Since(t0))
					continue
				}
				req := tg.request(ctx, url)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
						errs.Add(1)
					}
					continue
				}
				br.Reset(resp.Body)
				_, _ = io.Copy(io.Discard, br)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return result{}, fmt.Errorf("%s: no request completed", tg.name)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return result{
		rps:    float64(len(latencies)) / elapsed.Seconds(),
		p50:    latencies[len(latencies)/2],
		p99:    latencies[len(latencies)*99/100],
		errors: errs.Load(),
	}, nil
}

// login gets an access token of the demo user alice for company acme.
func login(port int) (string, error) {
	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1/auth", port)
	post := func(path, body string, out any) error {
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", path, resp.StatusCode)
		}
		return json.Unmarshal(env.Data, out)
	}
	var l struct {
		LoginToken string `json:"login_token"`
	}
	if err := post("/login", `{"email":"alice@acme.test","password":"erpgate-demo"}`, &l); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	var s struct {
		AccessToken string `json:"access_token"`
	}
	if err := post("/select-company", `{"login_token":"`+l.LoginToken+`","company_id":"acme"}`, &s); err != nil {
		return "", fmt.Errorf("select-company: %w", err)
	}
	return s.AccessToken, nil
}

// request is one request of the target.
func (tg target) request(ctx context.Context, url string) *http.Request {
	method := tg.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if tg.body != "" {
		body = strings.NewReader(tg.body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, body)
	for k, v := range tg.hdr {
		req.Header.Set(k, v)
	}
	if tg.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// invoiceV2 is the body of the write targets: a new invoice in the
// demo's v2 shape.
const invoiceV2 = `{"customer_id":"cus_acme_001","total":{"amount":"12.50","currency":"EUR"}}`

// eventTargets are the write path (POST of an invoice through the full
// chain) and a read (GET of one invoice) with the backend's business
// events on (each 2xx write publishes erp.invoices.created to the
// embedded NATS, asynchronously) and off, each against plain
// reverse_proxy doing the same request in its own process.
func eventTargets(ports map[string]int, dir string) ([]target, error) {
	var out []target
	for _, ev := range []string{"ev", "noev"} {
		if err := waitPort(ports["login-"+ev]); err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "gateway-"+ev+".log"))
			return nil, fmt.Errorf("gateway-%s not ready: %w\n%s", ev, err, b)
		}
		token, err := login(ports["login-"+ev])
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "gateway-"+ev+".log"))
			return nil, fmt.Errorf("gateway-%s: %w\n%s", ev, err, b)
		}
		bearer := map[string]string{"Authorization": "Bearer " + token}
		hdr := map[string]string{"X-ERP-Company-ID": "acme"}
		on := "events on"
		if ev == "noev" {
			on = "events off"
		}
		plainRead, plainWrite := "plain read ("+on+")", "plain write ("+on+")"
		const one = "/v2/invoices/inv_acme_0001"
		out = append(out,
			target{name: plainRead, port: ports["plain-"+ev], path: one, hdr: hdr, base: plainRead},
			target{name: "read, " + on, port: ports["full-"+ev], path: "/api" + one, hdr: bearer, base: plainRead},
			target{name: plainWrite, port: ports["plain-"+ev], path: "/v2/invoices", hdr: hdr, base: plainWrite, method: http.MethodPost, body: invoiceV2},
			target{name: "write, " + on, port: ports["full-"+ev], path: "/api/v2/invoices", hdr: bearer, base: plainWrite, method: http.MethodPost, body: invoiceV2},
		)
	}
	return out, nil
}

// caddyfileEvents is a process with the invoices backend's business
// events on ("ev": the default, published to the embedded NATS) or off
// ("noev"): its backend, plain reverse_proxy, the auth service and the
// full chain.
func caddyfileEvents(p map[string]int, ev string) string {
	events := ""
	if ev == "noev" {
		events = "events off"
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	log {
		level ERROR
	}
	erp {
		demo on
		backend invoices {
			%[6]s
			version v2 http://127.0.0.1:%[2]d/v2
		}
	}
}
http://127.0.0.1:%[2]d {
	erp_demo {
		insecure_skip_assertion
	}
}
http://:%[3]d {
	reverse_proxy 127.0.0.1:%[2]d
}
http://:%[4]d {
	erp_envelope
	erp_authsvc
	handle_errors {
		erp_envelope
	}
}
http://:%[5]d {
	erp_envelope
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan standard 1000000000/m
		}
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, p["admin-"+ev], p["demo-"+ev], p["plain-"+ev], p["login-"+ev], p["full-"+ev], events)
}

// eventCounters are the event engine's counters of a process (its
// Prometheus metrics on the admin endpoint): what the events targets made
// it publish.
func eventCounters(admin int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "erpgate_events_") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return "no erpgate_events_ metrics"
	}
	return strings.Join(out, ", ")
}
