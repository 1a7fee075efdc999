package respcache

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Memory is the process's store: bounded by entry count and bytes; when
// full, expired entries go first, then the entries closest to expiry.
// Generations are kept per group (a counter per company and backend that
// was ever written to).
type Memory struct {
	now        func() time.Time
	maxEntries int
	maxBytes   int

	mu      sync.Mutex
	gens    map[string]uint64
	entries map[string]memEntry
	bytes   int
}

type memEntry struct {
	val     []byte
	expires time.Time
}

// NewMemory makes a memory store holding at most maxEntries entries and
// maxBytes bytes of values; now is the clock (time.Now when nil).
func NewMemory(maxEntries, maxBytes int, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, maxEntries: maxEntries, maxBytes: maxBytes,
		gens: make(map[string]uint64), entries: make(map[string]memEntry)}
}

func memKey(k Key, gen uint64) string {
	return k.Group + ":" + strconv.FormatUint(gen, 10) + ":" + k.Variant
}

// Lookup implements Store.
func (m *Memory) Lookup(_ context.Context, k Key) (uint64, []byte, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	gen := m.gens[k.Group]
	key := memKey(k, gen)
	e, ok := m.entries[key]
	if !ok {
		return gen, nil, nil
	}
	if !now.Before(e.expires) {
		m.drop(key, e)
		return gen, nil, nil
	}
	return gen, e.val, nil
}

// Put implements Store. A value larger than the whole store is not kept.
func (m *Memory) Put(_ context.Context, k Key, gen uint64, val []byte, ttl time.Duration) error {
	if ttl <= 0 || len(val) > m.maxBytes {
		return nil
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gens[k.Group] != gen {
		return nil // invalidated since the lookup: the answer may be stale
	}
	key := memKey(k, gen)
	if old, ok := m.entries[key]; ok {
		m.drop(key, old)
	}
	if len(m.entries) >= m.maxEntries || m.bytes+len(val) > m.maxBytes {
		m.evict(now, len(val))
	}
	m.entries[key] = memEntry{val: val, expires: now.Add(ttl)}
	m.bytes += len(val)
	return nil
}

// Invalidate implements Store.
func (m *Memory) Invalidate(_ context.Context, group string) error {
	m.mu.Lock()
	m.gens[group]++
	m.mu.Unlock()
	return nil
}

// Len is the number of entries held (expired ones included until evicted).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *Memory) drop(key string, e memEntry) {
	delete(m.entries, key)
	m.bytes -= len(e.val)
}

// evict makes room for one value of size n: expired entries first, then
// the ones that expire soonest. It runs only when the store is full, so
// its scan is paid once per eviction round, which frees a tenth of the
// store at least.
func (m *Memory) evict(now time.Time, n int) {
	for key, e := range m.entries {
		if !now.Before(e.expires) {
			m.drop(key, e)
		}
	}
	target := m.maxEntries - m.maxEntries/10 - 1
	for len(m.entries) > target || m.bytes+n > m.maxBytes {
		var victim string
		var first time.Time
		for key, e := range m.entries {
			if victim == "" || e.expires.Before(first) {
				victim, first = key, e.expires
			}
		}
		if victim == "" {
			return
		}
		m.drop(victim, m.entries[victim])
	}
}
