package revocation

import (
	"testing"
	"time"
)

func TestSetCurrentAt(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := NewSet(func() time.Time { return t0 })
	if !s.CurrentAt(t0.Add(time.Hour), 5*time.Second) {
		t.Fatal("a set fed in process only is always current")
	}
	s.Unconfirm() // a Listener starts: nothing known yet
	if s.CurrentAt(t0, 5*time.Second) {
		t.Fatal("current before any resync")
	}
	s.Confirm(t0)
	s.Confirm(t0.Add(-time.Minute)) // an older confirmation changes nothing
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {5 * time.Second, true}, {5*time.Second + 1, false}, {time.Hour, false}} {
		if got := s.CurrentAt(t0.Add(c.at), 5*time.Second); got != c.want {
			t.Fatalf("at +%s: current = %v, want %v", c.at, got, c.want)
		}
	}
}

func BenchmarkSetCurrentAt(b *testing.B) {
	s := NewSet(time.Now)
	s.Confirm(time.Now())
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !s.CurrentAt(now, 5*time.Second) {
				b.Fatal("not current")
			}
		}
	})
}
