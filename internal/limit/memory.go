package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Memory is the in-process store: the embedded default, and the per-instance
// approximation erp_quota falls back to when Redis is unreachable (policy
// `local`). It has the same semantics as Redis, per process.
//
// Keys live in shards, each under its own mutex; a decision locks the shards
// of its keys in ascending order, so it is atomic over all its limits and
// cannot deadlock with another. Sweep removes what has expired.
type Memory struct {
	shards [memShards]memShard
	seed   maphash.Seed
}

const memShards = 64

type memShard struct {
	mu       sync.Mutex
	logs     map[string]*slidingLog
	counters map[string]*fixedCounter
}

// slidingLog holds admission times (Unix ms), ascending, in times[head:].
type slidingLog struct {
	times  []int64
	head   int
	window int64 // ms, of the last decision: for Sweep
}

type fixedCounter struct {
	n   int64
	end int64 // ms
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].logs = map[string]*slidingLog{}
		m.shards[i].counters = map[string]*fixedCounter{}
	}
	return m
}

func (m *Memory) shard(key string) int {
	return int(maphash.String(m.seed, key) % memShards)
}

// Decide implements Store.
func (m *Memory) Decide(_ context.Context, now time.Time, cost int64, limits []Limit, states []State) (int, error) {
	if err := checkLimits(cost, limits, states); err != nil {
		return -1, err
	}
	// lock each distinct shard once, in ascending order
	var idx [MaxLimits]int
	locked := idx[:0]
	for i := range limits {
		s := m.shard(limits[i].Key)
		pos := 0
		for pos < len(locked) && locked[pos] < s {
			pos++
		}
		if pos < len(locked) && locked[pos] == s {
			continue
		}
		locked = append(locked, 0)
		copy(locked[pos+1:], locked[pos:])
		locked[pos] = s
	}
	for _, s := range locked {
		m.shards[s].mu.Lock()
	}
	defer func() {
		for _, s := range locked {
			m.shards[s].mu.Unlock()
		}
	}()

	t := ms(now)
	refused := -1
	for i := range limits {
		l := &limits[i]
		sh := &m.shards[m.shard(l.Key)]
		switch l.Kind {
		case Sliding:
			w := l.Window.Milliseconds()
			lg := sh.logs[l.Key]
			var used int64
			if lg != nil {
				lg.prune(t - w)
				used = int64(len(lg.times) - lg.head)
			}
			states[i] = State{Used: used}
			if cost > 0 && used+cost > l.Max {
				if refused < 0 {
					refused = i
				}
				// it fits when the (used+cost-max)th oldest admission leaves
				if k := used + cost - l.Max - 1; k < used {
					states[i].Reset = fromMS(lg.times[lg.head+int(k)] + w)
				}
			}
		case Fixed:
			var used int64
			if c := sh.counters[l.Key]; c != nil && c.end == ms(l.End) {
				used = c.n
			}
			states[i] = State{Used: used, Reset: l.End}
			if cost > 0 && used+cost > l.Max && refused < 0 {
				refused = i
			}
		}
	}
	admit := refused < 0 && cost > 0
	for i := range limits {
		l := &limits[i]
		sh := &m.shards[m.shard(l.Key)]
		switch l.Kind {
		case Sliding:
			w := l.Window.Milliseconds()
			lg := sh.logs[l.Key]
			if admit {
				if lg == nil {
					lg = &slidingLog{}
					sh.logs[l.Key] = lg
				}
				lg.window = w
				for range cost {
					lg.times = append(lg.times, t)
				}
				states[i].Used += cost
			}
			if states[i].Reset.IsZero() && (refused != i) {
				if lg != nil && len(lg.times) > lg.head {
					states[i].Reset = fromMS(lg.times[lg.head] + w)
				} else {
					states[i].Reset = now
				}
			}
		case Fixed:
			if admit {
				c := sh.counters[l.Key]
				if c == nil || c.end != ms(l.End) {
					c = &fixedCounter{end: ms(l.End)}
					sh.counters[l.Key] = c
				}
				c.n += cost
				states[i].Used = c.n
			}
		}
	}
	return refused, nil
}

// prune drops admissions at or before cutoff, compacting now and then so
// the slice does not grow without bound.
func (lg *slidingLog) prune(cutoff int64) {
	for lg.head < len(lg.times) && lg.times[lg.head] <= cutoff {
		lg.head++
	}
	if lg.head == len(lg.times) {
		lg.times, lg.head = lg.times[:0], 0
	} else if lg.head > 64 && lg.head > len(lg.times)/2 {
		n := copy(lg.times, lg.times[lg.head:])
		lg.times, lg.head = lg.times[:n], 0
	}
}

// Delete forgets key.
func (m *Memory) Delete(key string) {
	sh := &m.shards[m.shard(key)]
	sh.mu.Lock()
	delete(sh.logs, key)
	delete(sh.counters, key)
	sh.mu.Unlock()
}

// Sweep removes windows with nothing left in them and counters whose
// period ended before now; it returns how many keys remain.
func (m *Memory) Sweep(now time.Time) int {
	t := ms(now)
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, lg := range sh.logs {
			lg.prune(t - lg.window)
			if len(lg.times) == 0 {
				delete(sh.logs, k)
			}
		}
		for k, c := range sh.counters {
			if c.end <= t {
				delete(sh.counters, k)
			}
		}
		n += len(sh.logs) + len(sh.counters)
		sh.mu.Unlock()
	}
	return n
}

// Run sweeps every interval until ctx is done.
func (m *Memory) Run(ctx context.Context, clock Clock, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			m.Sweep(clock.Now())
		}
	}
}
