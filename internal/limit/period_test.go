package limit

import (
	"testing"
	"time"
)

func TestBillingPeriod(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	d := func(loc *time.Location, y int, m time.Month, day, h, min int) time.Time {
		return time.Date(y, m, day, h, min, 0, 0, loc)
	}
	for _, c := range []struct {
		name       string
		now        time.Time
		day        int
		loc        *time.Location
		start, end time.Time
	}{
		{"first of the month, UTC", d(time.UTC, 2026, 5, 14, 10, 0), 1, time.UTC, d(time.UTC, 2026, 5, 1, 0, 0), d(time.UTC, 2026, 6, 1, 0, 0)},
		{"before this month's billing day", d(time.UTC, 2026, 5, 14, 10, 0), 15, time.UTC, d(time.UTC, 2026, 4, 15, 0, 0), d(time.UTC, 2026, 5, 15, 0, 0)},
		{"on the billing day at midnight", d(time.UTC, 2026, 5, 15, 0, 0), 15, time.UTC, d(time.UTC, 2026, 5, 15, 0, 0), d(time.UTC, 2026, 6, 15, 0, 0)},
		{"day 31 in February", d(time.UTC, 2026, 2, 28, 12, 0), 31, time.UTC, d(time.UTC, 2026, 2, 28, 0, 0), d(time.UTC, 2026, 3, 31, 0, 0)},
		{"day 31 before February's end", d(time.UTC, 2026, 2, 27, 12, 0), 31, time.UTC, d(time.UTC, 2026, 1, 31, 0, 0), d(time.UTC, 2026, 2, 28, 0, 0)},
		{"day 30 in a leap February", d(time.UTC, 2028, 3, 1, 0, 0), 30, time.UTC, d(time.UTC, 2028, 2, 29, 0, 0), d(time.UTC, 2028, 3, 30, 0, 0)},
		{"across the year", d(time.UTC, 2027, 1, 3, 0, 0), 10, time.UTC, d(time.UTC, 2026, 12, 10, 0, 0), d(time.UTC, 2027, 1, 10, 0, 0)},
		// 23:30 UTC on Apr 30 is already May 1 in Berlin (and in Tokyo)
		{"the company's own zone", d(time.UTC, 2026, 4, 30, 23, 30), 1, berlin, d(berlin, 2026, 5, 1, 0, 0), d(berlin, 2026, 6, 1, 0, 0)},
		{"UTC still in April", d(time.UTC, 2026, 4, 30, 23, 30), 1, time.UTC, d(time.UTC, 2026, 4, 1, 0, 0), d(time.UTC, 2026, 5, 1, 0, 0)},
		{"Tokyo", d(time.UTC, 2026, 5, 14, 15, 30), 15, tokyo, d(tokyo, 2026, 5, 15, 0, 0), d(tokyo, 2026, 6, 15, 0, 0)},
		// a period spanning the DST change is 1h shorter than its days
		{"across DST", d(berlin, 2026, 3, 20, 12, 0), 15, berlin, d(berlin, 2026, 3, 15, 0, 0), d(berlin, 2026, 4, 15, 0, 0)},
		{"day out of range is clamped", d(time.UTC, 2026, 5, 14, 0, 0), 0, nil, d(time.UTC, 2026, 5, 1, 0, 0), d(time.UTC, 2026, 6, 1, 0, 0)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, e := BillingPeriod(c.now, c.day, c.loc)
			if !s.Equal(c.start) || !e.Equal(c.end) {
				t.Fatalf("got [%v, %v), want [%v, %v)", s, e, c.start, c.end)
			}
			if c.now.Before(s) || !c.now.Before(e) {
				t.Fatalf("%v not in [%v, %v)", c.now, s, e)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Rate{
		"60/m": {60, time.Minute}, "6000/min": {6000, time.Minute}, "10/s": {10, time.Second},
		"100/10s": {100, 10 * time.Second}, "5/h": {5, time.Hour}, "1/d": {1, 24 * time.Hour}, "0/m": {0, time.Minute},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "60", "x/m", "-1/m", "60/fortnight", "60/0s", "60/1500us", "1/800h", "60/m/s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("%q: accepted as %v", in, r)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	ps := []Policy{{"free", 60, time.Minute}, {"free-month", 100000, 30 * 24 * time.Hour}}
	if got, want := string(PolicyHeader(nil, ps)), `"free";q=60;w=60, "free-month";q=100000;w=2592000`; got != want {
		t.Fatalf("policy %q, want %q", got, want)
	}
	if got, want := string(RateLimitHeader(nil, "free", 12, 30)), `"free";r=12;t=30`; got != want {
		t.Fatalf("ratelimit %q, want %q", got, want)
	}
	now := time.Unix(100, 0)
	if SecondsUntil(now, now.Add(1500*time.Millisecond)) != 2 || SecondsUntil(now, now.Add(-time.Second)) != 0 {
		t.Fatal("SecondsUntil does not round up / clamp")
	}
	st := []State{{Used: 50}, {Used: 10}}
	if Closest(-1, ps, st) != 0 {
		t.Fatal("closest: the rate has 10 left, the quota 99990")
	}
	if Closest(1, ps, st) != 1 {
		t.Fatal("closest: the refused one")
	}
}
