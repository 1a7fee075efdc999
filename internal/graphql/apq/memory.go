package apq

import (
	"container/list"
	"context"
	"sync"
)

// DefaultMemoryEntries is Memory's bound when NewMemory is given none.
const DefaultMemoryEntries = 1000

// Memory is a Store in this process: a least-recently-used cache of at most
// max queries (so at most max × MaxQueryBytes of text). A Get or a Put makes
// an entry the most recent; a Put over the bound drops the least recent.
// The zero value is not usable; make one with NewMemory.
type Memory struct {
	mu      sync.Mutex
	max     int
	order   *list.List // of *memEntry, most recent first
	byHash  map[string]*list.Element
	evicted uint64
}

type memEntry struct {
	hash, query string
}

// NewMemory returns an empty Memory holding at most max queries;
// max < 1 means DefaultMemoryEntries.
func NewMemory(max int) *Memory {
	if max < 1 {
		max = DefaultMemoryEntries
	}
	return &Memory{max: max, order: list.New(), byHash: make(map[string]*list.Element, min(max, 1024))}
}

// Get returns the query stored under hash and makes it the most recent.
func (m *Memory) Get(_ context.Context, hash string) (string, bool, error) {
	if !ValidHash(hash) {
		return "", false, ErrInvalidHash
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byHash[hash]
	if !ok {
		return "", false, nil
	}
	m.order.MoveToFront(e)
	return e.Value.(*memEntry).query, true, nil
}

// Put stores query under hash (after checking that hash is its sha256),
// making it the most recent and dropping the least recent entry when the
// bound is reached.
func (m *Memory) Put(_ context.Context, hash, query string) error {
	if err := check(hash, query); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byHash[hash]; ok {
		m.order.MoveToFront(e) // same hash, same text: nothing to replace
		return nil
	}
	if m.order.Len() >= m.max {
		// reuse the least recent entry's element: a full store's Put
		// allocates nothing of its own
		last := m.order.Back()
		ent := last.Value.(*memEntry)
		delete(m.byHash, ent.hash)
		ent.hash, ent.query = hash, query
		m.order.MoveToFront(last)
		m.byHash[hash] = last
		m.evicted++
		return nil
	}
	m.byHash[hash] = m.order.PushFront(&memEntry{hash: hash, query: query})
	return nil
}

// Len is the number of queries stored.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// Evicted is how many entries the bound has dropped so far.
func (m *Memory) Evicted() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evicted
}

// Interface guards
var _ Store = (*Memory)(nil)
