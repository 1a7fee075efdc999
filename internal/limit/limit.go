// Package limit is erp_quota's limiter arithmetic and its two stores, with
// no Caddy import: rates and plans, billing periods, the sliding-window log
// kept in memory or in Redis, and the RateLimit header values.
//
// # Algorithm: a sliding-window log
//
// A short-term rate "q requests per w" is enforced as a sliding-window log:
// every admitted request leaves its timestamp, and a request is admitted
// when fewer than q timestamps lie in the last w (the window (now-w, now]).
// So no interval of length w ever holds more than q admitted requests — the
// exact promise `RateLimit-Policy: "free";q=60;w=60` makes. A fixed window
// lets a client double its rate across a window boundary (q at the end of
// one window, q at the start of the next). GCRA was rejected for the same
// reason in another form: with a burst of q it admits the burst and then
// refills, so up to 2q-1 requests fit in one w; with a burst of 1 it admits
// no burst at all (60/min becomes one per second), which is not what a plan
// of "60 per minute" means to a customer. The log costs one entry per
// admitted request in the window, so its memory per key is bounded by the
// plan's q (a company at 6000/min holds at most 6000 entries); an idle key
// costs nothing (it expires).
//
// Long quotas ("1,000,000 per month") are a plain counter per billing
// period: the period is a calendar month starting on the company's billing
// day in its own time zone (BillingPeriod), and the counter's key names the
// period, so it resets by itself when the next period begins.
//
// One decision checks every limit in force (the company's rate, the
// optional per-user or per-API-key sub-rate, the monthly quota) at once and
// admits only if all of them admit: a refused request consumes nothing
// anywhere. In Redis that is one Lua script, run by SHA; concurrent
// decisions are batched (see Redis).
//
// It lives in internal/ as every Caddy-free core does: it imports no Caddy,
// nothing under caddymodules/ and nothing else of ours (erp_quota is its
// Caddy glue). It owns the limit rule; the state is in the store its caller
// makes (the erp app keeps the in-memory one across reloads).
package limit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Clock is where the limiter reads the time; tests inject their own.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// Kind of a limit.
type Kind uint8

const (
	// Sliding: at most Max admissions in any interval of length Window.
	Sliding Kind = iota
	// Fixed: at most Max admissions until End (a billing period's counter).
	Fixed
)

// Limit is one limit in force for a decision.
type Limit struct {
	Key    string        // the store key (the caller puts the prefix on)
	Kind   Kind          //
	Max    int64         // admissions allowed (0 refuses everything)
	Window time.Duration // Sliding: the window; at least a millisecond
	End    time.Time     // Fixed: when the counter's period ends
}

// State is one limit's state after a decision.
type State struct {
	Used int64 // admissions counted in the window or period, this one included when admitted
	// Reset is when the limit next gives units back: for a refused sliding
	// limit, when the request would fit; for an admitted one, when the
	// oldest counted admission leaves the window (now when none is counted);
	// for a fixed limit, the period's end. Zero when the request can never
	// fit (it costs more than Max).
	Reset time.Time
}

// Remaining is what is left of max.
func (s State) Remaining(max int64) int64 {
	if r := max - s.Used; r > 0 {
		return r
	}
	return 0
}

// Store decides atomically over several limits.
type Store interface {
	// Decide admits cost units at now if every limit has room for them, and
	// then counts them in every limit; otherwise it changes nothing. It
	// writes each limit's state to states (len(states) >= len(limits)) and
	// returns the index of the first limit that refused, or -1. cost 0 only
	// reads.
	Decide(ctx context.Context, now time.Time, cost int64, limits []Limit, states []State) (refused int, err error)
}

// ErrTooManyLimits: a decision takes at most MaxLimits limits.
var ErrTooManyLimits = errors.New("limit: too many limits in one decision")

// MaxLimits bounds a decision (company rate, client rate, monthly quota).
const MaxLimits = 4

func checkLimits(cost int64, limits []Limit, states []State) error {
	if len(limits) > MaxLimits {
		return ErrTooManyLimits
	}
	if len(states) < len(limits) {
		return errors.New("limit: states shorter than limits")
	}
	if cost < 0 {
		return errors.New("limit: negative cost")
	}
	for i := range limits {
		if limits[i].Key == "" {
			return errors.New("limit: empty key") // never one shared bucket
		}
		if limits[i].Kind == Sliding && limits[i].Window < time.Millisecond {
			return errors.New("limit: window shorter than a millisecond")
		}
	}
	return nil
}

// Rate is "Max per Window".
type Rate struct {
	Max    int64
	Window time.Duration
}

// IsZero reports an unset rate.
func (r Rate) IsZero() bool { return r.Window == 0 }

// String renders the rate as ParseRate reads it.
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := ""
	switch r.Window {
	case time.Second:
		unit = "s"
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	case 24 * time.Hour:
		unit = "d"
	default:
		unit = r.Window.String()
	}
	return strconv.FormatInt(r.Max, 10) + "/" + unit
}

// ParseRate reads "<n>/<unit>": the unit is s, m, h, d (also sec, min,
// hour, day) or a duration such as 10s or 1m30s, e.g. "60/m", "6000/1m",
// "100/10s". The window is between 1ms and 31 days.
func ParseRate(s string) (Rate, error) {
	n, u, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want <n>/<unit>, e.g. 60/m", s)
	}
	max, err := strconv.ParseInt(n, 10, 64)
	if err != nil || max < 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count", s, n)
	}
	var w time.Duration
	switch u {
	case "s", "sec", "second":
		w = time.Second
	case "m", "min", "minute":
		w = time.Minute
	case "h", "hour":
		w = time.Hour
	case "d", "day":
		w = 24 * time.Hour
	default:
		if w, err = time.ParseDuration(u); err != nil {
			return Rate{}, fmt.Errorf("rate %q: unit %q: want s, m, h, d or a duration like 10s", s, u)
		}
	}
	if w < time.Millisecond || w > 31*24*time.Hour {
		return Rate{}, fmt.Errorf("rate %q: the window must be between 1ms and 31 days", s)
	}
	if w%time.Millisecond != 0 {
		return Rate{}, fmt.Errorf("rate %q: the window must be whole milliseconds", s)
	}
	return Rate{Max: max, Window: w}, nil
}

// ms is t in Unix milliseconds, the resolution of both stores.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }
