package sampling

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// SampleKey is a key as the refusal audit makes them.
type SampleKey struct{ Provider, Reason string }

func TestSamplerFirstNThenSummary(t *testing.T) {
	t.Parallel()
	s := &Sampler[SampleKey]{PerInterval: 3, Interval: time.Minute}
	jwt, key := SampleKey{"jwt", "malformed"}, SampleKey{"api_key", "inactive"}
	ok := func() bool { return true }
	var got []Outcome
	for i := range 10 {
		got = append(got, s.Offer(jwt, t0.Add(time.Duration(i)*time.Second), ok))
	}
	want := []Outcome{Recorded, Recorded, Recorded, Summarized, Summarized, Summarized, Summarized, Summarized, Summarized, Summarized}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
	// Another key has its own window; one within its sample needs no summary.
	if s.Offer(key, t0, ok) != Recorded {
		t.Fatal("other key not recorded")
	}
	if sums := s.Flush(t0.Add(59 * time.Second)); len(sums) != 0 {
		t.Fatalf("summaries before the window ended: %+v", sums)
	}
	sums := s.Flush(t0.Add(time.Minute))
	if len(sums) != 1 {
		t.Fatalf("summaries: %+v", sums)
	}
	if g := sums[0]; g.Key != jwt || g.Total != 10 || g.Recorded != 3 || g.Count() != 7 || !g.Start.Equal(t0) || !g.End.Equal(t0.Add(time.Minute)) {
		t.Fatalf("summary %+v", g)
	}
	// The next window starts afresh.
	if s.Offer(jwt, t0.Add(2*time.Minute), ok) != Recorded {
		t.Fatal("a new window does not record")
	}
	if sums := s.Flush(t0.Add(10 * time.Minute)); len(sums) != 0 {
		t.Fatalf("summary of a window that recorded everything: %+v", sums)
	}
}

// A window that ends while refusals keep coming is summarised once, even
// before the next Flush.
func TestSamplerWindowRollsOver(t *testing.T) {
	t.Parallel()
	s := &Sampler[SampleKey]{PerInterval: 1, Interval: time.Second}
	k := SampleKey{"jwt", "expired"}
	total := 0
	for i := range 50 { // 100ms apart: 5 windows of 10
		s.Offer(k, t0.Add(time.Duration(i)*100*time.Millisecond), func() bool { return true })
		total++
	}
	sums := s.FlushAll(t0.Add(5 * time.Second))
	if len(sums) != 5 {
		t.Fatalf("%d summaries, want 5: %+v", len(sums), sums)
	}
	var count int64
	for _, g := range sums {
		count += g.Count()
		if g.Recorded != 1 || g.Total != 10 {
			t.Fatalf("summary %+v", g)
		}
	}
	if count+5 != int64(total) {
		t.Fatalf("recorded 5 + summarised %d != %d", count, total)
	}
}

func TestSamplerDroppedCountsInSummary(t *testing.T) {
	t.Parallel()
	s := &Sampler[SampleKey]{PerInterval: 4, Interval: time.Minute}
	k := SampleKey{"api_key", "malformed"}
	room := 2
	for range 6 {
		s.Offer(k, t0, func() bool { room--; return room >= 0 })
	}
	sums := s.FlushAll(t0.Add(time.Second))
	if len(sums) != 1 || sums[0].Total != 6 || sums[0].Recorded != 2 || sums[0].Dropped != 2 || sums[0].Count() != 4 || !sums[0].End.Equal(t0.Add(time.Second)) {
		t.Fatalf("summary %+v", sums)
	}
}
