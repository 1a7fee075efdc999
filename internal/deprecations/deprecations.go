// Package deprecations counts each company's calls to deprecated backend
// versions, per edge instance: what erp_version records and erp_usage shows
// (`GET /api/v1/usage`, "deprecated_calls"). It owns one bounded counter per
// Counter value; the erp app keeps one in its lasting state (erpapp.Lasting),
// so counts survive config reloads, not restarts. It must not import Caddy or
// anything under caddymodules/.
package deprecations

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Usage is one company's use of one deprecated backend version,
// counted since this process started (counts survive config reloads, not
// restarts, and are per edge instance).
type Usage struct {
	Backend   string     `json:"backend"`
	Version   string     `json:"version"`
	Calls     int64      `json:"calls"`
	FirstCall time.Time  `json:"first_call"`
	LastCall  time.Time  `json:"last_call"`
	Sunset    *time.Time `json:"sunset,omitempty"`
	Successor string     `json:"successor,omitempty"`
}

// maxKeys bounds the counter's memory: companies × deprecated versions.
// Companies come from verified identities, but the bound holds whatever
// feeds it; calls beyond it are still logged, just not counted here.
const maxKeys = 100_000

type usageKey struct{ company, backend, version string }

// Counter is the bounded count of calls to deprecated versions, safe for
// concurrent use.
type Counter struct {
	mu      sync.Mutex
	entries map[usageKey]*Usage
}

// New returns an empty Counter.
func New() *Counter { return &Counter{entries: map[usageKey]*Usage{}} }

// Add counts one call of company to backend's version at at; false when the
// counter is full (the call is not counted).
func (c *Counter) Add(company, backend, version string, at time.Time, sunset time.Time, successor string) bool {
	k := usageKey{company, backend, version}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		if len(c.entries) >= maxKeys {
			return false
		}
		e = &Usage{Backend: backend, Version: version, FirstCall: at}
		c.entries[k] = e
	}
	e.Calls++
	e.LastCall = at
	e.Successor = successor
	if sunset.IsZero() {
		e.Sunset = nil
	} else if e.Sunset == nil || !e.Sunset.Equal(sunset) {
		s := sunset
		e.Sunset = &s
	}
	return true
}

// List lists the calls company made to deprecated versions, sorted by
// backend and version; an unknown company gets an empty, non-nil list.
func (c *Counter) List(company string) []Usage {
	c.mu.Lock()
	out := []Usage{}
	for k, e := range c.entries {
		if k.company == company {
			cp := *e
			if e.Sunset != nil {
				s := *e.Sunset
				cp.Sunset = &s
			}
			out = append(out, cp)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Usage) int {
		if c := strings.Compare(a.Backend, b.Backend); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return out
}
