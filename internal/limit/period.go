package limit

import "time"

// BillingPeriod is the monthly period holding now: it starts at midnight,
// in loc, of the billing day (1–31; in a month with fewer days, its last
// day), and ends where the next one starts. A billing day of 31 thus gives
// periods starting Jan 31, Feb 28 (29), Mar 31, Apr 30, …
func BillingPeriod(now time.Time, day int, loc *time.Location) (start, end time.Time) {
	if day < 1 {
		day = 1
	}
	if day > 31 {
		day = 31
	}
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	y, m := t.Year(), t.Month()
	start = anchor(y, m, day, loc)
	if t.Before(start) {
		y, m = prevMonth(y, m)
		start = anchor(y, m, day, loc)
	}
	ny, nm := nextMonth(y, m)
	return start, anchor(ny, nm, day, loc)
}

func anchor(y int, m time.Month, day int, loc *time.Location) time.Time {
	if last := daysIn(y, m); day > last {
		day = last
	}
	return time.Date(y, m, day, 0, 0, 0, 0, loc)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func prevMonth(y int, m time.Month) (int, time.Month) {
	if m == time.January {
		return y - 1, time.December
	}
	return y, m - 1
}

func nextMonth(y int, m time.Month) (int, time.Month) {
	if m == time.December {
		return y + 1, time.January
	}
	return y, m + 1
}
