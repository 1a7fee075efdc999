package quota

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/internal/limit"
)

// registry lists the erp_quota handlers of one config, in provisioning
// order, so `GET /api/v1/usage` (erp_usage) reads the same limits.
type registry struct {
	mu       sync.Mutex
	handlers []*Handler
}

const registryName = "erp_quota.handlers"

func registerHandler(app *erpapp.App, h *Handler) {
	v, err := app.Provide(registryName, func() (any, error) { return &registry{}, nil })
	if err != nil {
		return // the config is being unloaded
	}
	if reg, ok := v.(*registry); ok {
		reg.mu.Lock()
		reg.handlers = append(reg.handlers, h)
		reg.mu.Unlock()
	}
}

// ErrNoQuota: the config has no erp_quota handler.
var ErrNoQuota = errors.New("erp_quota: no erp_quota handler in this config")

// Usage is a company's current use of its limits, as `GET /api/v1/usage` shows it.
type Usage struct {
	Plan       string       `json:"plan"`
	Unlimited  bool         `json:"unlimited"`
	Rate       *WindowUsage `json:"rate,omitempty"`
	ClientRate *WindowUsage `json:"client_rate,omitempty"`
	Quota      *PeriodUsage `json:"quota,omitempty"`
	// Store is where the numbers come from: redis, memory (the embedded
	// default) or local (this instance's approximation while Redis is down).
	Store string `json:"store"`
}

// WindowUsage is a sliding window's state.
type WindowUsage struct {
	Policy        string    `json:"policy"`
	Limit         int64     `json:"limit"`
	WindowSeconds int64     `json:"window_seconds"`
	Used          int64     `json:"used"`
	Remaining     int64     `json:"remaining"`
	Reset         time.Time `json:"reset"` // when the oldest counted request leaves the window
}

// PeriodUsage is a billing period's state.
type PeriodUsage struct {
	Policy      string    `json:"policy"`
	Limit       int64     `json:"limit"`
	Used        int64     `json:"used"`
	Remaining   int64     `json:"remaining"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// UsageOf reads (without counting) the limits of the request's company and
// caller, with the first erp_quota handler of the config.
func UsageOf(ctx caddy.Context, r *http.Request) (*Usage, error) {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return nil, err
	}
	v, err := app.Provide(registryName, func() (any, error) { return &registry{}, nil })
	if err != nil {
		return nil, err
	}
	reg, ok := v.(*registry)
	if !ok {
		return nil, ErrNoQuota
	}
	reg.mu.Lock()
	var h *Handler
	if len(reg.handlers) > 0 {
		h = reg.handlers[0]
	}
	reg.mu.Unlock()
	if h == nil {
		return nil, ErrNoQuota
	}
	return h.usage(r)
}

func (h *Handler) usage(r *http.Request) (*Usage, error) {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return nil, errors.New("erp_quota: no replacer")
	}
	company := repl.ReplaceAll(h.Key, "")
	if company == "" {
		return nil, errors.New("erp_quota: the request has no company")
	}
	now := h.clock.Now()
	var t terms
	h.resolveRequest(repl, company, now, &t)
	u := &Usage{Plan: t.plan, Unlimited: t.n == 0, Store: "none"}
	if t.n == 0 {
		return u, nil
	}
	var states [3]limit.State
	_, store, err := h.decide(r.Context(), now, 0, &t, states[:])
	if err != nil {
		return nil, err
	}
	u.Store = store
	for i := 0; i < t.n; i++ {
		p, st := t.policies[i], states[i]
		if i == t.quotaAt {
			u.Quota = &PeriodUsage{Policy: p.Name, Limit: p.Max, Used: st.Used, Remaining: st.Remaining(p.Max),
				PeriodStart: t.start.UTC(), PeriodEnd: t.limits[i].End.UTC()}
			continue
		}
		w := &WindowUsage{Policy: p.Name, Limit: p.Max, WindowSeconds: windowSeconds(p), Used: st.Used,
			Remaining: st.Remaining(p.Max), Reset: st.Reset.UTC()}
		if i == 0 && t.policies[0].Name == t.plan {
			u.Rate = w
		} else {
			u.ClientRate = w
		}
	}
	return u, nil
}
