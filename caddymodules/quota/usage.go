package quota

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/internal/limit"
)

// Usage is a company's current use of its limits, as `GET /api/v1/usage`
// shows it (erpapp.QuotaUsage: erp_usage reads it through the erp app).
type (
	Usage       = erpapp.QuotaUsage
	WindowUsage = erpapp.WindowUsage
	PeriodUsage = erpapp.PeriodUsage
)

// Usage reads (without counting) the limits of the request's company and
// caller (erpapp.Quota).
func (h *Handler) Usage(r *http.Request) (*Usage, error) {
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
