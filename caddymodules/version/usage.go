package version

// This file has no Caddy import: the in-process counter of calls to
// deprecated versions, per company.

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// DeprecatedUsage is one company's use of one deprecated backend version,
// counted since this process started (counts survive config reloads, not
// restarts, and are per edge instance).
type DeprecatedUsage struct {
	Backend   string     `json:"backend"`
	Version   string     `json:"version"`
	Calls     int64      `json:"calls"`
	FirstCall time.Time  `json:"first_call"`
	LastCall  time.Time  `json:"last_call"`
	Sunset    *time.Time `json:"sunset,omitempty"`
	Successor string     `json:"successor,omitempty"`
}

// DeprecatedCalls lists the calls company made to deprecated versions,
// sorted by backend and version. It is what `GET /api/v1/usage` shows the
// caller's company; an unknown company gets an empty list.
func DeprecatedCalls(company string) []DeprecatedUsage { return counter.list(company) }

// maxUsageKeys bounds the counter's memory: companies × deprecated versions.
// Companies come from verified identities, but the bound holds whatever
// feeds it; calls beyond it are still logged, just not counted here.
const maxUsageKeys = 100_000

type usageKey struct{ company, backend, version string }

type usageCounter struct {
	mu      sync.Mutex
	entries map[usageKey]*DeprecatedUsage
}

var counter = &usageCounter{entries: map[usageKey]*DeprecatedUsage{}}

// add counts one call; false when the counter is full.
func (c *usageCounter) add(company, backend, version string, at time.Time, sunset time.Time, successor string) bool {
	k := usageKey{company, backend, version}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		if len(c.entries) >= maxUsageKeys {
			return false
		}
		e = &DeprecatedUsage{Backend: backend, Version: version, FirstCall: at}
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

func (c *usageCounter) list(company string) []DeprecatedUsage {
	c.mu.Lock()
	out := []DeprecatedUsage{}
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
	slices.SortFunc(out, func(a, b DeprecatedUsage) int {
		if c := strings.Compare(a.Backend, b.Backend); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return out
}
