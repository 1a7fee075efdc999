package limit

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/testenv"
)

// TestRedisBatchDecidesInOrder sends hand-made batches to see the script
// decide several decisions of one call one after the other, with the
// reset of a refusal found among the call's own admissions or in the set.
func TestRedisBatchDecidesInOrder(t *testing.T) {
	c, p := testenv.RedisClient(t)
	s := NewRedis(c)
	ctx := context.Background()
	w := time.Minute
	l := []Limit{{Key: p + "rl:{acme}", Kind: Sliding, Max: 3, Window: w},
		{Key: p + "quota:{acme}:p", Kind: Fixed, Max: 100, End: t0.Add(time.Hour)}}
	batch := func(now time.Time, costs ...int64) []*call {
		var b []*call
		for _, cost := range costs {
			b = append(b, &call{now: ms(now), cost: cost, limits: l, states: make([]State, 2)})
		}
		s.send(ctx, b)
		for _, d := range b {
			if d.err != nil {
				t.Fatal(d.err)
			}
		}
		return b
	}

	// one call: three admitted (used 1, 2, 3), then a cost of 2 and a cost
	// of 1 refused; the entries they wait for are this call's (score now)
	b := batch(t0, 1, 1, 1, 2, 1, 0)
	for i, want := range []int{-1, -1, -1, 0, 0, -1} {
		if b[i].refused != want {
			t.Fatalf("decision %d: refused %d, want %d", i, b[i].refused, want)
		}
	}
	for i := range 3 {
		if b[i].states[0].Used != int64(i+1) || b[i].states[1].Used != int64(i+1) {
			t.Fatalf("decision %d: used %+v", i, b[i].states)
		}
		if !b[i].states[0].Reset.Equal(t0.Add(w)) || !b[i].states[1].Reset.Equal(l[1].End) {
			t.Fatalf("decision %d: reset %+v", i, b[i].states)
		}
	}
	for _, i := range []int{3, 4} {
		if b[i].states[0].Used != 3 || !b[i].states[0].Reset.Equal(t0.Add(w)) || b[i].states[1].Used != 3 {
			t.Fatalf("refusal %d: %+v", i, b[i].states)
		}
	}
	if b[5].states[0].Used != 3 { // a read sees the admissions before it
		t.Fatalf("read: %+v", b[5].states)
	}

	// 30 s later, in another call: the oldest entries are in the set
	b = batch(t0.Add(30*time.Second), 1, 4)
	if b[0].refused != 0 || !b[0].states[0].Reset.Equal(t0.Add(w)) {
		t.Fatalf("refused %d %+v", b[0].refused, b[0].states)
	}
	if b[1].refused != 0 || !b[1].states[0].Reset.IsZero() {
		t.Fatalf("cost over max: refused %d %+v", b[1].refused, b[1].states)
	}

	// the window moved past the first three: three fit again, at the new time
	t1 := t0.Add(w + time.Second)
	b = batch(t1, 1, 1, 1, 1)
	if b[2].refused != -1 || b[2].states[0].Used != 3 || b[3].refused != 0 || !b[3].states[0].Reset.Equal(t1.Add(w)) {
		t.Fatalf("after the window: %+v %+v", b[2], b[3])
	}
	if b[3].states[1].Used != 6 {
		t.Fatalf("quota counted %d, want 6 (refusals consume nothing)", b[3].states[1].Used)
	}
}

// TestRedisBatchesUnderLoad: many concurrent decisions for three companies
// go in fewer round trips than decisions, and each company gets exactly its
// limit, every admitted decision seeing a different count.
func TestRedisBatchesUnderLoad(t *testing.T) {
	c, hook, p := countedClient(t)
	s := NewRedis(c)
	const max, workers, each = 150, 48, 10
	companies := []string{"{a}", "{b}", "{c}"}
	var mu sync.Mutex
	seen := map[string][]int64{}
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			co := companies[g%len(companies)]
			l := []Limit{{Key: p + "rl:" + co, Kind: Sliding, Max: max, Window: time.Hour},
				{Key: p + "quota:" + co + ":p", Kind: Fixed, Max: 10 * max, End: t0.Add(time.Hour)}}
			st := make([]State, 2)
			for range each {
				r, err := s.Decide(context.Background(), time.Now(), 1, l, st)
				if err != nil {
					t.Error(err)
					return
				}
				if r == -1 {
					mu.Lock()
					seen[co] = append(seen[co], st[0].Used)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for _, co := range companies {
		got := seen[co]
		slices.Sort(got)
		if len(got) != max || got[0] != 1 || got[max-1] != max || len(slices.Compact(got)) != max {
			t.Fatalf("%s: %d admitted (want exactly %d, each seeing a different count)", co, len(got), max)
		}
	}
	if n := hook.n.Load(); n >= workers*each {
		t.Fatalf("%d round trips for %d decisions: no batching", n, workers*each)
	} else {
		t.Logf("%d decisions in %d round trips", workers*each, n)
	}
}
