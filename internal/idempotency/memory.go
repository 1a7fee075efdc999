package idempotency

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is the store of one process: keys live in a map, answers count
// against MaxBytes and the oldest go first when it is full (retention is the
// same for every answer, so the oldest stored is the first to expire).
type Memory struct {
	ttl, lease time.Duration
	maxBytes   int
	now        Clock

	mu    sync.Mutex
	m     map[string]*memEntry
	order *list.List // done entries, oldest first
	bytes int
}

type memEntry struct {
	fp      string
	token   string // lock only
	rec     *Record
	expires time.Time
	size    int
	elem    *list.Element
}

// memEntryOverhead is what a key costs beyond its answer.
const memEntryOverhead = 160

// NewMemory makes a memory store keeping answers for ttl, locks for lease,
// and at most maxBytes of keys and answers. now may be nil (time.Now).
func NewMemory(ttl, lease time.Duration, maxBytes int, now Clock) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{ttl: ttl, lease: lease, maxBytes: maxBytes, now: now, m: make(map[string]*memEntry), order: list.New()}
}

// Begin takes key's lock or says what holds it.
func (s *Memory) Begin(_ context.Context, key, fp string) (Result, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		if now.Before(e.expires) {
			switch {
			case e.fp != fp:
				return Result{State: Mismatch}, nil
			case e.rec == nil:
				return Result{State: InFlight}, nil
			default:
				return Result{State: Replay, Record: e.rec}, nil
			}
		}
		s.remove(key, e)
	}
	size := len(key) + memEntryOverhead
	s.makeRoom(size)
	tok := fp + newToken()
	s.m[key] = &memEntry{fp: fp, token: tok, expires: now.Add(s.lease), size: size}
	s.bytes += size
	return Result{State: Started, Token: tok}, nil
}

// Complete stores rec as key's answer if token still holds the lock.
func (s *Memory) Complete(_ context.Context, key, token string, rec *Record) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil || e.rec != nil || e.token != token || !now.Before(e.expires) {
		return ErrNotHolder
	}
	add := rec.Size()
	s.bytes -= e.size
	e.size = len(key) + memEntryOverhead + add
	e.rec, e.token, e.expires = rec, "", now.Add(s.ttl)
	delete(s.m, key) // not evicted by makeRoom while it is being placed
	s.makeRoom(e.size)
	s.m[key] = e
	s.bytes += e.size
	e.elem = s.order.PushBack(key)
	return nil
}

// Release drops key's lock if token holds it.
func (s *Memory) Release(_ context.Context, key, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil || e.rec != nil || e.token != token {
		return ErrNotHolder
	}
	s.remove(key, e)
	return nil
}

// Len is the number of keys held (tests, metrics).
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Bytes is what the held keys and answers count (tests, metrics).
func (s *Memory) Bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func (s *Memory) remove(key string, e *memEntry) {
	delete(s.m, key)
	s.bytes -= e.size
	if e.elem != nil {
		s.order.Remove(e.elem)
		e.elem = nil
	}
}

// makeRoom drops the oldest answers until size more bytes fit. Locks are
// never dropped (they are small and short-lived); if only locks are left,
// the bound is exceeded by them until they end.
func (s *Memory) makeRoom(size int) {
	for s.bytes+size > s.maxBytes {
		front := s.order.Front()
		if front == nil {
			return
		}
		key := front.Value.(string)
		s.remove(key, s.m[key])
	}
}
