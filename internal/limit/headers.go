package limit

import (
	"strconv"
	"time"
)

// Policy is one limit as the client sees it in RateLimit-Policy.
type Policy struct {
	Name   string        // sf-string, e.g. "free" or "free-month"; [a-z0-9_.-] only
	Max    int64         // q
	Window time.Duration // w (for a period: its length)
}

// PolicyHeader renders RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers
// rev. 11, a structured-field List): `"free";q=60;w=60, "free-month";q=…;w=…`.
func PolicyHeader(buf []byte, ps []Policy) []byte {
	for i, p := range ps {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = append(buf, '"')
		buf = append(buf, p.Name...)
		buf = append(buf, `";q=`...)
		buf = strconv.AppendInt(buf, p.Max, 10)
		buf = append(buf, ";w="...)
		buf = strconv.AppendInt(buf, ceilSeconds(p.Window), 10)
	}
	return buf
}

// RateLimitHeader renders RateLimit: `"free";r=12;t=30`.
func RateLimitHeader(buf []byte, name string, remaining, reset int64) []byte {
	buf = append(buf, '"')
	buf = append(buf, name...)
	buf = append(buf, `";r=`...)
	buf = strconv.AppendInt(buf, remaining, 10)
	buf = append(buf, ";t="...)
	buf = strconv.AppendInt(buf, reset, 10)
	return buf
}

// SecondsUntil is the whole seconds from now to t, rounded up, never
// negative: what `t=`, X-RateLimit-Reset and Retry-After carry.
func SecondsUntil(now, t time.Time) int64 {
	if !t.After(now) {
		return 0
	}
	return ceilSeconds(t.Sub(now))
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Closest is the index of the policy closest to refusing: the refused one
// if any, else the one with the fewest remaining units (the first on a tie).
func Closest(refused int, ps []Policy, states []State) int {
	if refused >= 0 {
		return refused
	}
	best := -1
	var bestRem int64
	for i := range ps {
		r := states[i].Remaining(ps[i].Max)
		if best < 0 || r < bestRem {
			best, bestRem = i, r
		}
	}
	return best
}
