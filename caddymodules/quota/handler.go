// Package quota is the erp_quota handler: per-company rate limits and
// monthly quotas, exact across every edge instance through Redis. The
// limiter state is not its own: the in-memory counters and the Redis client
// are the erp app's (Lasting.QuotaMemory, App.RedisClient); a handler
// registers itself as the config's quota (App.SetQuota) for erp_usage. It
// keeps only its Prometheus collectors, registered on each config's
// registry (internal/promreg). Of caddymodules it imports only the erp app
// and caddymodules/internal/caddyfileutil.
//
// The arithmetic and the stores are in the limit package (no Caddy import):
// a sliding-window log for rates (why not GCRA or a fixed window: see the
// limit package's doc) and a counter per billing period for quotas, in one
// atomic decision, in Redis or in memory.
package quota

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/limit"
	"github.com/erpgate/erpgate/internal/refusallog"
	"github.com/erpgate/erpgate/internal/tracing"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler limits each company to its plan: a short-term rate over a sliding
// window, an optional sub-limit per user or API key, and an optional quota
// per billing period (a month from the company's billing day, in its time
// zone). It goes after erp_auth, whose verified identity names the company
// and its plan:
//
//	handle /api/* {
//		route {
//			erp_version
//			erp_auth
//			erp_quota {
//				plan free {
//					rate 60/m
//				}
//				plan standard {
//					rate  6000/m
//					quota 1000000
//				}
//			}
//			reverse_proxy { dynamic erp }
//		}
//	}
//
// With `redis` set in the erp app, every edge instance counts in Redis (an
// atomic Lua script, called by SHA; concurrent decisions share round trips
// and one company's share one script call, decided in order), so a company
// gets exactly its limit whatever the number of instances; without it, the
// counters are the process's (the erp app's lasting state: kept across
// config reloads, not restarts).
// Per-company overrides (plan, numbers, billing day, time zone) live in the
// erp app's `quota_overrides`, changeable through the admin API.
//
// Every limited answer carries `RateLimit-Policy` (one item per limit in
// force) and `RateLimit` (the limit closest to refusing) as in
// draft-ietf-httpapi-ratelimit-headers rev. 11, and X-RateLimit-Limit,
// -Remaining and -Reset with the same numbers. A refusal is 429 with
// `Retry-After` and the envelope code RATE_LIMITED (a rate) or
// QUOTA_EXCEEDED (the quota), whose context has the policy, limit, window
// (seconds), reset (RFC 3339) and retry_after (seconds). A refused request
// consumes nothing. Plans without limits (enterprise) pass without headers.
//
// When Redis does not answer within timeout, on_redis_down decides: allow
// (let requests through uncounted), deny (503 SERVICE_UNAVAILABLE) or local
// (count in this instance's memory: each instance then allows the full
// limit on its own). The switch is logged and counted
// (erpgate_quota_redis_switches_total); Redis is probed every
// probe_interval and used again as soon as it answers.
//
// In shadow mode it counts and sets the headers but never refuses: for
// rolling out new limits (would-be refusals are logged and counted as
// shadow_refused).
type Handler struct {
	// Plans by name ([a-z0-9_-]). Plans the config does not list keep
	// their defaults: free 60/m and 10000 per month, standard 6000/m and
	// 1000000, premium 30000/m and 10000000, enterprise unlimited.
	Plans map[string]*Plan `json:"plans,omitempty"`

	// DefaultPlan applies when the credential names no plan or one that
	// is not configured. Default: `free`.
	DefaultPlan string `json:"default_plan,omitempty"`

	// Key names the company whose limits apply; it must contain a
	// placeholder (a constant would put every company in one bucket), and a
	// request for which it is empty is refused with 500 (erp_quota placed
	// before erp_auth), never counted in a shared bucket. Default:
	// `{http.auth.user.company_id}`.
	Key string `json:"key,omitempty"`

	// PlanFrom names the plan. Default: `{http.auth.user.plan}`.
	PlanFrom string `json:"plan_from,omitempty"`

	// Client names the user or API key for a plan's client_rate, and must
	// contain a placeholder. Default: the API key's id
	// (`{http.auth.user.key_id}`) for API keys, else the user
	// (`{http.auth.user.id}`).
	Client string `json:"client,omitempty"`

	// OnRedisDown is what happens while Redis is unreachable: `allow`,
	// `deny` or `local`. Default: `local`.
	OnRedisDown string `json:"on_redis_down,omitempty"`

	// Shadow counts and sets headers but never refuses. Default: false.
	Shadow bool `json:"shadow,omitempty"`

	// Timeout bounds each Redis call (within the request's own context).
	// Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// ProbeInterval is how often an unreachable Redis is tried again.
	// Default: 1s.
	ProbeInterval caddy.Duration `json:"probe_interval,omitempty"`

	// BillingDay is the day of the month (1–31) billing periods start,
	// for companies without their own in quota_overrides. Default: 1.
	BillingDay int `json:"billing_day,omitempty"`

	// TimeZone (IANA) in which billing days start, for companies without
	// their own. Default: UTC.
	TimeZone string `json:"time_zone,omitempty"`

	plans    map[string]*Plan
	loc      *time.Location
	app      *erpapp.App
	ctx      caddy.Context
	logger   *zap.Logger
	refusals refusallog.Logger // sampled refusal lines (erpapp.RefusalLog)
	clock    limit.Clock
	store    limit.Store // Redis, or the process's memory store
	local    limit.Store // the memory store, for on_redis_down local
	rdb      redis.UniversalClient
	prefix   string
	fallback *fallbackState
	policy   string
	keyCache *keyCache
}

// keyCache holds each company's store keys.
type keyCache struct {
	m sync.Map // company → *keys
	n atomic.Int64
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_quota",
		New: func() caddy.Module { return new(Handler) },
	}
}

const (
	policyAllow = "allow"
	policyDeny  = "deny"
	policyLocal = "local"
)

// Provision sets defaults, parses the plans and gets the store.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	return h.provision(ctx, app)
}

func (h *Handler) provision(ctx caddy.Context, app *erpapp.App) error {
	h.ctx = ctx
	h.logger = ctx.Logger()
	h.refusals = app.Refusals().For(h.logger)
	h.fallback = new(fallbackState)
	h.keyCache = new(keyCache)
	if h.clock == nil {
		h.clock = limit.SystemClock{}
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if h.DefaultPlan == "" {
		h.DefaultPlan = "free"
	}
	if h.Key == "" {
		h.Key = "{http.auth.user.company_id}"
	}
	if h.PlanFrom == "" {
		h.PlanFrom = "{http.auth.user.plan}"
	}
	if !strings.Contains(h.Key, "{") {
		return errors.New("erp_quota: key has no placeholder: every company would share one bucket")
	}
	if h.Client != "" && !strings.Contains(h.Client, "{") {
		return errors.New("erp_quota: client has no placeholder: every user would share one bucket")
	}
	if h.OnRedisDown == "" {
		h.OnRedisDown = policyLocal
	}
	switch h.OnRedisDown {
	case policyAllow, policyDeny, policyLocal:
	default:
		return errors.New("erp_quota: on_redis_down must be allow, deny or local")
	}
	h.policy = h.OnRedisDown
	if h.Timeout <= 0 {
		h.Timeout = caddy.Duration(100 * time.Millisecond)
	}
	if h.ProbeInterval <= 0 {
		h.ProbeInterval = caddy.Duration(time.Second)
	}
	if h.BillingDay == 0 {
		h.BillingDay = 1
	}
	if h.BillingDay < 1 || h.BillingDay > 31 {
		return errors.New("erp_quota: billing_day must be 1 to 31")
	}
	if h.TimeZone == "" {
		h.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(h.TimeZone)
	if err != nil {
		return errors.New("erp_quota: time_zone: " + err.Error())
	}
	h.loc = loc
	h.plans = defaultPlans()
	for name, p := range h.Plans {
		if p == nil {
			p = &Plan{}
		}
		h.plans[name] = p
	}
	for name, p := range h.plans {
		if err := p.provision(name); err != nil {
			return errors.New("erp_quota: " + err.Error())
		}
	}
	if h.plans[h.DefaultPlan] == nil {
		return errors.New("erp_quota: default_plan " + strconv.Quote(h.DefaultPlan) + " is not a plan")
	}

	h.app = app
	h.prefix = app.KeyPrefix
	if strings.ContainsAny(h.prefix, "{}") {
		return errors.New("erp_quota: the erp key_prefix must not contain { or }: they would break the keys' hash tags")
	}
	h.local = app.Lasting().QuotaMemory() // counters survive config reloads
	h.store = h.local
	if rdb := app.RedisClient(); rdb != nil {
		h.rdb = rdb
		st := limit.NewRedis(rdb)
		st.Timeout = time.Duration(h.Timeout)
		h.store = st
	}
	app.SetQuota(h)
	return nil
}

// Cleanup stops counting this handler's Redis fallback.
func (h *Handler) Cleanup() error {
	if h.fallback != nil && h.fallback.down.CompareAndSwap(true, false) {
		metricFallback.Dec()
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := h.admit(w, r, 1); err != nil {
		return err
	}
	return next.ServeHTTP(w, r)
}

// Charge implements erpapp.Quota: n requests in one decision.
func (h *Handler) Charge(w http.ResponseWriter, r *http.Request, n int64) *contract.Error {
	if n < 1 {
		n = 1
	}
	err := h.admit(w, r, n)
	if err == nil {
		return nil
	}
	var ce *contract.Error
	if errors.As(err, &ce) {
		return ce
	}
	return contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, "rate limiting is temporarily unavailable; retry shortly")
}

// admit decides n requests for r's company: nil when they may pass (the
// rate-limit headers are set on w), else the refusal as a caddyhttp error.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, n int64) error {
	// the span covers the decision (its store's commands are its children)
	ctx, span := tracing.Start(r.Context(), "erp.quota")
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(tracing.KeyBatch.Int64(n))
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return caddyhttp.Error(http.StatusInternalServerError, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "internal error"))
	}
	company := replValue(repl, h.Key)
	if company == "" {
		if ce := h.refusals.Check(r.Context(), zapcore.ErrorLevel, "erp_quota: the request has no company; put erp_auth before erp_quota", "no_company"); ce != nil {
			ce.Write()
		}
		return caddyhttp.Error(http.StatusInternalServerError, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "internal error"))
	}
	now := h.clock.Now()
	var t terms
	h.resolveRequest(repl, company, now, &t)
	if t.n == 0 {
		decided(ctx, company, t.plan, "unlimited", "none")
		return nil
	}
	var states [3]limit.State
	refused, store, err := h.decide(ctx, now, n, &t, states[:])
	if err != nil {
		if r.Context().Err() != nil { // the client went away
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
		switch h.policy {
		case policyAllow:
			decided(ctx, company, t.plan, "redis_down_allowed", "none")
			return nil
		default:
			decided(ctx, company, t.plan, "redis_down_denied", "none")
			if ce := h.refusals.Check(r.Context(), zapcore.DebugLevel, "erp_quota: refused while redis is down", "redis_down"); ce != nil {
				ce.Write(zap.String("company_id", company), zap.String("plan", t.plan))
			}
			retry := strconv.FormatInt(limit.SecondsUntil(now, now.Add(time.Duration(h.ProbeInterval))), 10)
			return caddyhttp.Error(http.StatusServiceUnavailable, &contract.Error{
				Status:  http.StatusServiceUnavailable,
				Code:    contract.CodeServiceUnavailable,
				Message: "rate limiting is temporarily unavailable; retry shortly",
				Header:  http.Header{"Retry-After": {retry}},
			})
		}
	}
	hdr := w.Header()
	if refused >= 0 && !h.Shadow {
		hdr = http.Header{}
	}
	closest := limit.Closest(refused, t.policies[:t.n], states[:t.n])
	setHeaders(hdr, now, &t, states[:t.n], closest)
	if refused < 0 {
		decided(ctx, company, t.plan, "allowed", store)
		return nil
	}
	if h.Shadow {
		decided(ctx, company, t.plan, "shadow_refused", store)
		if ce := h.refusals.CheckLine(zapcore.InfoLevel, "erp_quota shadow: would refuse", t.policies[refused].Name); ce != nil {
			ce.Write(zap.String("company_id", company), zap.String("plan", t.plan), zap.String("policy", t.policies[refused].Name))
		}
		return nil
	}
	return h.refuse(ctx, now, company, &t, states[:t.n], refused, store, hdr)
}

// resolveRequest reads the identity and puts the terms together.
func (h *Handler) resolveRequest(repl *caddy.Replacer, company string, now time.Time, t *terms) {
	plan := replValue(repl, h.PlanFrom)
	var ov *override
	if o := h.app.QuotaOverrideFor(company); o != nil {
		ov = &override{plan: o.Plan, rate: o.RateOverride(), clientRate: o.ClientRateOverride(),
			quota: o.Quota, billingDay: o.BillingDay, loc: o.Location()}
	}
	k := h.keysOf(company)
	h.resolve(now, plan, ov, func() string {
		if client := h.clientOf(repl); client != "" {
			return k.rate + ":c:" + client
		}
		return ""
	}, k, t)
}

// replValue is repl.ReplaceAll(s, ""), without building a string when s
// is one placeholder with no default (the defaults are).
func replValue(repl *caddy.Replacer, s string) string {
	if len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.ContainsAny(s[1:len(s)-1], "{}:\\") {
		v, _ := repl.GetString(s[1 : len(s)-1])
		return v
	}
	return repl.ReplaceAll(s, "")
}

// keysOf is company's store keys, kept per company (up to maxKeyCache
// companies) so a request builds none.
func (h *Handler) keysOf(company string) keys {
	if v, ok := h.keyCache.m.Load(company); ok {
		return *v.(*keys)
	}
	k := keys{rate: h.prefix + contract.RedisKeyRateLimit + "{" + company + "}",
		quota: h.prefix + contract.RedisKeyQuota + "{" + company + "}:"}
	if h.keyCache.n.Add(1) <= maxKeyCache {
		h.keyCache.m.Store(company, &k)
	}
	return k
}

const maxKeyCache = 100_000

func (h *Handler) clientOf(repl *caddy.Replacer) string {
	if h.Client != "" {
		return repl.ReplaceAll(h.Client, "")
	}
	if id, _ := repl.GetString("http.auth.user.key_id"); id != "" {
		return "k:" + id
	}
	if id, _ := repl.GetString("http.auth.user.id"); id != "" {
		return "u:" + id
	}
	return ""
}

// decide runs the decision on Redis, or on the fallback while Redis is
// down; it returns which store decided.
func (h *Handler) decide(ctx context.Context, now time.Time, cost int64, t *terms, states []limit.State) (int, string, error) {
	if h.rdb == nil {
		r, err := h.store.Decide(ctx, now, cost, t.limits[:t.n], states)
		return r, "memory", err
	}
	if !h.fallback.down.Load() {
		r, err := h.store.Decide(ctx, now, cost, t.limits[:t.n], states) // bounded by its Timeout
		if err == nil {
			return r, "redis", nil
		}
		if ctx.Err() != nil {
			return -1, "redis", err
		}
		h.switchToFallback(err, t.limits[0].Key)
	}
	if h.policy == policyLocal {
		r, err := h.local.Decide(ctx, now, cost, t.limits[:t.n], states)
		return r, "local", err
	}
	return -1, "none", errRedisDown
}

var errRedisDown = errors.New("erp_quota: redis unreachable")

// fallbackState is whether Redis is considered down, and the probe.
type fallbackState struct {
	down atomic.Bool
	// key is a key of the decision that failed: the probe asks its node.
	// On a Redis Cluster a PING answered by any node says nothing of the
	// primary that failed (until its replica is elected the others answer
	// PING, and CLUSTERDOWN to everything else).
	key atomic.Pointer[string]
}

func (h *Handler) switchToFallback(cause error, key string) {
	if !h.fallback.down.CompareAndSwap(false, true) {
		return
	}
	h.fallback.key.Store(&key)
	metricSwitches.WithLabelValues("fallback").Inc()
	metricFallback.Inc()
	h.logger.Warn("erp_quota: redis unreachable, deciding by the on_redis_down policy until it answers",
		zap.String("on_redis_down", h.policy), zap.Error(cause))
	go h.probe()
}

// probe asks Redis every ProbeInterval — EXISTS of a key of the decision
// that failed, so on a cluster the node that serves its slot — until it
// answers (then the handler uses Redis again) or the config is unloaded.
func (h *Handler) probe() {
	tk := time.NewTicker(time.Duration(h.ProbeInterval))
	defer tk.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tk.C:
		}
		err := h.probeOnce()
		if err != nil {
			// Once more a moment later: on a cluster the failure made the
			// client re-read the layout (rediscluster.FollowFailovers), and a
			// replica elected since is then found now, not an interval later.
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(min(time.Duration(h.ProbeInterval)/2, 250*time.Millisecond)):
			}
			err = h.probeOnce()
		}
		if err != nil {
			continue
		}
		if h.fallback.down.CompareAndSwap(true, false) {
			metricSwitches.WithLabelValues("redis").Inc()
			metricFallback.Dec()
			h.logger.Info("erp_quota: redis answers again, counting in redis", zap.String("on_redis_down", h.policy))
		}
		return
	}
}

// probeOnce asks Redis whether it answers again.
func (h *Handler) probeOnce() error {
	c, cancel := context.WithTimeout(h.ctx, time.Duration(h.Timeout)+time.Duration(h.ProbeInterval)/2)
	defer cancel()
	if key := h.fallback.key.Load(); key != nil {
		return h.rdb.Exists(c, *key).Err() // answered by the node that serves the failed decision's slot
	}
	return h.rdb.Ping(c).Err()
}

// setHeaders writes RateLimit-Policy, RateLimit and X-RateLimit-*: the
// five values are cut from one string, the five slices from one array.
func setHeaders(hdr http.Header, now time.Time, t *terms, states []limit.State, closest int) {
	var buf [256]byte
	b := limit.PolicyHeader(buf[:0], t.policies[:t.n])
	var cut [5]int
	cut[0] = len(b)
	p, st := t.policies[closest], states[closest]
	rem := st.Remaining(p.Max)
	reset := resetSeconds(now, p, st)
	b = limit.RateLimitHeader(b, p.Name, rem, reset)
	cut[1] = len(b)
	b = strconv.AppendInt(b, p.Max, 10)
	cut[2] = len(b)
	b = strconv.AppendInt(b, rem, 10)
	cut[3] = len(b)
	b = strconv.AppendInt(b, reset, 10)
	cut[4] = len(b)
	all := string(b)
	vals := &[5]string{}
	from := 0
	for i, to := range cut {
		vals[i] = all[from:to]
		from = to
	}
	hdr["Ratelimit-Policy"] = vals[0:1:1]
	hdr["Ratelimit"] = vals[1:2:2]
	hdr["X-Ratelimit-Limit"] = vals[2:3:3]
	hdr["X-Ratelimit-Remaining"] = vals[3:4:4]
	hdr["X-Ratelimit-Reset"] = vals[4:5:5]
}

// resetSeconds: when the state gives no reset (the request can never
// fit), a whole window.
func resetSeconds(now time.Time, p limit.Policy, st limit.State) int64 {
	if st.Reset.IsZero() {
		return limit.SecondsUntil(now, now.Add(p.Window))
	}
	return limit.SecondsUntil(now, st.Reset)
}

func windowSeconds(p limit.Policy) int64 {
	return int64((p.Window + time.Second - 1) / time.Second)
}

// refuse builds the 429.
func (h *Handler) refuse(rctx context.Context, now time.Time, company string, t *terms, states []limit.State, refused int, store string, hdr http.Header) error {
	p, st := t.policies[refused], states[refused]
	retry := resetSeconds(now, p, st)
	if retry < 1 {
		retry = 1
	}
	hdr["Retry-After"] = []string{strconv.FormatInt(retry, 10)}
	reset := st.Reset
	if reset.IsZero() {
		reset = now.Add(p.Window)
	}
	ctx := map[string]any{
		"policy":      p.Name,
		"limit":       p.Max,
		"window":      windowSeconds(p),
		"reset":       reset.UTC().Format(time.RFC3339),
		"retry_after": retry,
	}
	e := &contract.Error{Status: http.StatusTooManyRequests, Context: ctx, Header: hdr}
	if refused == t.quotaAt {
		decided(rctx, company, t.plan, "quota_exceeded", store)
		e.Code = contract.CodeQuotaExceeded
		e.Message = "the monthly quota of " + strconv.FormatInt(p.Max, 10) + " requests is used up; it renews at " + ctx["reset"].(string)
		ctx["period_start"] = t.start.UTC().Format(time.RFC3339)
	} else {
		decided(rctx, company, t.plan, "rate_limited", store)
		e.Code = contract.CodeRateLimited
		e.Message = "rate limit of " + strconv.FormatInt(p.Max, 10) + " requests per " + strconv.FormatInt(windowSeconds(p), 10) + "s reached; retry in " + strconv.FormatInt(retry, 10) + "s"
	}
	reason := "rate_limited"
	if refused == t.quotaAt {
		reason = "quota_exceeded"
	}
	if ce := h.refusals.Check(rctx, zapcore.DebugLevel, "erp_quota: refused", reason); ce != nil {
		ce.Write(zap.String("company_id", company), zap.String("plan", t.plan), zap.String("policy", p.Name), zap.String("store", store))
	}
	return caddyhttp.Error(http.StatusTooManyRequests, e)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ erpapp.Quota                = (*Handler)(nil)
)

// decided counts a decision and puts it on the request's `erp.quota` span
// (when one records): plan, outcome, store and company.
func decided(ctx context.Context, company, plan, outcome, store string) {
	metricDecisions.WithLabelValues(plan, outcome, store).Inc()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.KeyCompany.String(company), tracing.KeyPlan.String(plan),
			tracing.KeyOutcome.String(outcome), tracing.KeyStore.String(store))
	}
}
