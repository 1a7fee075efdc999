package graphql

// This file has no Caddy import: the plans' limits and which plan a request
// runs under, tested and benchmarked alone.

import (
	"fmt"
	"sort"

	"github.com/erpgate/erpgate/internal/graphql"
)

// Plan is one plan's limits on a GraphQL operation. A field left zero takes
// the value of the built-in plan of the same name (free, standard, premium,
// enterprise), or else free's.
type Plan struct {
	// MaxDepth is the deepest nesting of field selections (a root field is 1).
	MaxDepth int `json:"max_depth,omitempty"`
	// MaxCost is the highest cost (backend calls, multiplied by the page
	// sizes above them: internal/graphql's package doc).
	MaxCost int `json:"max_cost,omitempty"`
	// MaxAliases is the most aliased fields.
	MaxAliases int `json:"max_aliases,omitempty"`
	// MaxSize is the longest document, in bytes. The request body may be
	// up to 4×MaxSize + 64 KiB (variables and extensions beside it).
	MaxSize int `json:"max_size,omitempty"`
	// PersistedOnly runs only the documents of the persisted_queries
	// manifest, named by their hash: a query text or an unknown hash is
	// refused (403) and nothing is registered.
	PersistedOnly bool `json:"persisted_only,omitempty"`
}

// builtinPlans are the limits of the plans a config need not list.
var builtinPlans = map[string]Plan{
	"free":       {MaxDepth: 8, MaxCost: 500, MaxAliases: 20, MaxSize: 8 << 10},
	"standard":   {MaxDepth: 12, MaxCost: 5000, MaxAliases: 50, MaxSize: 32 << 10},
	"premium":    {MaxDepth: 15, MaxCost: 20000, MaxAliases: 100, MaxSize: 64 << 10},
	"enterprise": {MaxDepth: 20, MaxCost: 100000, MaxAliases: 200, MaxSize: 128 << 10},
}

// maxSizeLimit bounds a plan's max_size (and so the request body).
const maxSizeLimit = 1 << 20

// plan is a Plan resolved for the request path.
type plan struct {
	name          string
	limits        graphql.Limits
	persistedOnly bool
	maxBody       int64 // the request body's bound
}

// plans are the config's plans by name, with the default one.
type plans struct {
	byName map[string]*plan
	def    *plan
}

// resolvePlans fills the configured plans' unset limits and adds the
// built-in plans not configured. defaultPlan must name one of them.
func resolvePlans(configured map[string]*Plan, defaultPlan string) (*plans, error) {
	ps := &plans{byName: make(map[string]*plan, len(configured)+len(builtinPlans))}
	add := func(name string, p Plan) error {
		base, ok := builtinPlans[name]
		if !ok {
			base = builtinPlans["free"]
		}
		if p.MaxDepth < 0 || p.MaxCost < 0 || p.MaxAliases < 0 || p.MaxSize < 0 {
			return fmt.Errorf("plan %s: limits are positive numbers", name)
		}
		if p.MaxDepth == 0 {
			p.MaxDepth = base.MaxDepth
		}
		if p.MaxCost == 0 {
			p.MaxCost = base.MaxCost
		}
		if p.MaxAliases == 0 {
			p.MaxAliases = base.MaxAliases
		}
		if p.MaxSize == 0 {
			p.MaxSize = base.MaxSize
		}
		if p.MaxSize > maxSizeLimit {
			return fmt.Errorf("plan %s: max_size is at most %d bytes", name, maxSizeLimit)
		}
		ps.byName[name] = &plan{
			name:          name,
			limits:        graphql.Limits{MaxDepth: p.MaxDepth, MaxCost: p.MaxCost, MaxAliases: p.MaxAliases, MaxSize: p.MaxSize},
			persistedOnly: p.PersistedOnly,
			maxBody:       int64(p.MaxSize)*4 + 64<<10,
		}
		return nil
	}
	names := make([]string, 0, len(configured))
	for name := range configured {
		names = append(names, name)
	}
	sort.Strings(names) // errors in a stable order
	for _, name := range names {
		p := configured[name]
		if name == "" {
			return nil, fmt.Errorf("a plan needs a name")
		}
		if p == nil {
			p = &Plan{}
		}
		if err := add(name, *p); err != nil {
			return nil, err
		}
	}
	for name, p := range builtinPlans {
		if _, ok := ps.byName[name]; !ok {
			if err := add(name, p); err != nil {
				return nil, err
			}
		}
	}
	if ps.def = ps.byName[defaultPlan]; ps.def == nil {
		return nil, fmt.Errorf("default_plan %q is not a plan", defaultPlan)
	}
	return ps, nil
}

// forRequest is the plan a request runs under: the company's quota
// override plan when set, else the credential's plan, else the default.
// A plan name no plan has falls back to the default too.
func (ps *plans) forRequest(overridePlan, credentialPlan string) *plan {
	name := overridePlan
	if name == "" {
		name = credentialPlan
	}
	if p, ok := ps.byName[name]; ok {
		return p
	}
	return ps.def
}
