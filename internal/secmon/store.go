package secmon

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps the monitor's state: sliding windows of distinct members,
// one-shot marks and seen-sets. Redis makes it exact across instances;
// Memory serves one process.
type Store interface {
	// Window adds member at now to key's sliding window and returns the
	// number of distinct members seen in the last window (a failure's event
	// id counts failures; an account name counts distinct accounts).
	Window(ctx context.Context, key, member string, now time.Time, window time.Duration) (int64, error)
	// Once reports true for the first call with key within ttl, false for
	// the others (one instance, one event per rule firing and window).
	Once(ctx context.Context, key string, now time.Time, ttl time.Duration) (bool, error)
	// Seen records member in key's set, where members are kept for ttl
	// after they were last seen, and reports whether member was there and
	// whether the set held any member before this call.
	Seen(ctx context.Context, key, member string, now time.Time, ttl time.Duration) (known, others bool, err error)
}

// Bounds of one key's members: a flood can't grow a window or a seen-set
// without limit (the oldest go first).
const (
	maxWindowMembers = 100_000
	maxSeenMembers   = 200
)

// Redis is the Store in Redis, every key under Prefix + "sec:".
type Redis struct {
	Client redis.UniversalClient
	Prefix string
}

// windowScript: drop what left the window, add the member (its score is
// its last time), bound the set, keep the key as long as the window.
var windowScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[4]) then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - tonumber(ARGV[4]) - 1)
  n = tonumber(ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
`)

// seenScript: forget members older than the ttl, report whether member and
// any member were there, record member now, bound the set.
var seenScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local known = redis.call('ZSCORE', KEYS[1], ARGV[3]) and 1 or 0
local others = redis.call('ZCARD', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > tonumber(ARGV[4]) then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - tonumber(ARGV[4]) - 1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {known, others}
`)

func (r *Redis) key(k string) string { return r.Prefix + "sec:" + k }

// Window implements Store.
func (r *Redis) Window(ctx context.Context, key, member string, now time.Time, window time.Duration) (int64, error) {
	return windowScript.Run(ctx, r.Client, []string{r.key("win:" + key)},
		now.UnixMilli(), window.Milliseconds(), member, maxWindowMembers).Int64()
}

// onceScript: the mark holds its end (the monitor's clock, not Redis'),
// so a mark is judged by the same clock as the windows.
var onceScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and tonumber(v) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] + ARGV[2], 'PX', ARGV[2])
return 1
`)

// Once implements Store.
func (r *Redis) Once(ctx context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	n, err := onceScript.Run(ctx, r.Client, []string{r.key("once:" + key)}, now.UnixMilli(), max(ttl.Milliseconds(), 1)).Int64()
	return n == 1, err
}

// Seen implements Store.
func (r *Redis) Seen(ctx context.Context, key, member string, now time.Time, ttl time.Duration) (bool, bool, error) {
	v, err := seenScript.Run(ctx, r.Client, []string{r.key("seen:" + key)},
		now.UnixMilli(), ttl.Milliseconds(), member, maxSeenMembers).Int64Slice()
	if err != nil {
		return false, false, err
	}
	if len(v) != 2 {
		return false, false, redis.Nil
	}
	return v[0] == 1, v[1] > 0, nil
}

// Memory is the Store of one process. Keys not touched for their window
// are dropped by Prune (the monitor calls it).
type Memory struct {
	mu      sync.Mutex
	windows map[string]*memSet
	seen    map[string]*memSet
	once    map[string]time.Time // key -> until
}

// memSet is a set of members with the time each was last added: a map and
// a queue in insertion order, so dropping what expired costs O(1) per
// member (an entry re-added later stays in the queue as a stale record,
// skipped because its time no longer matches the map's).
type memSet struct {
	members map[string]time.Time // member -> last time
	queue   []memEntry
	ttl     time.Duration
	last    time.Time
}

type memEntry struct {
	member string
	at     time.Time
}

func (s *memSet) expire(now time.Time, ttl time.Duration) {
	i := 0
	for ; i < len(s.queue); i++ {
		e := s.queue[i]
		if now.Sub(e.at) <= ttl {
			break
		}
		if t, ok := s.members[e.member]; ok && t.Equal(e.at) {
			delete(s.members, e.member)
		}
	}
	s.queue = s.queue[i:]
}

func (s *memSet) add(member string, now time.Time, ttl time.Duration, max int) {
	s.expire(now, ttl)
	s.members[member] = now
	s.queue = append(s.queue, memEntry{member, now})
	s.ttl, s.last = ttl, now
	for len(s.members) > max && len(s.queue) > 0 { // drop the oldest
		e := s.queue[0]
		s.queue = s.queue[1:]
		if t, ok := s.members[e.member]; ok && t.Equal(e.at) {
			delete(s.members, e.member)
		}
	}
	if len(s.queue) > 2*len(s.members)+64 { // many stale records: compact
		q := make([]memEntry, 0, len(s.members))
		for _, e := range s.queue {
			if t, ok := s.members[e.member]; ok && t.Equal(e.at) {
				q = append(q, e)
			}
		}
		s.queue = q
	}
}

// NewMemory is an empty Memory store.
func NewMemory() *Memory {
	return &Memory{windows: map[string]*memSet{}, seen: map[string]*memSet{}, once: map[string]time.Time{}}
}

func get(m map[string]*memSet, key string) *memSet {
	s, ok := m[key]
	if !ok {
		s = &memSet{members: map[string]time.Time{}}
		m[key] = s
	}
	return s
}

// Window implements Store.
func (m *Memory) Window(_ context.Context, key, member string, now time.Time, window time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := get(m.windows, key)
	s.add(member, now, window, maxWindowMembers)
	return int64(len(s.members)), nil
}

// Once implements Store.
func (m *Memory) Once(_ context.Context, key string, now time.Time, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.once[key]; ok && now.Before(until) {
		return false, nil
	}
	m.once[key] = now.Add(ttl)
	return true, nil
}

// Seen implements Store.
func (m *Memory) Seen(_ context.Context, key, member string, now time.Time, ttl time.Duration) (bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := get(m.seen, key)
	s.expire(now, ttl)
	_, known := s.members[member]
	others := len(s.members) > 0
	s.add(member, now, ttl, maxSeenMembers)
	return known, others, nil
}

// Prune drops what no window or mark needs any more.
func (m *Memory) Prune(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mm := range []map[string]*memSet{m.windows, m.seen} {
		for k, s := range mm {
			if now.Sub(s.last) > s.ttl {
				delete(mm, k)
			}
		}
	}
	for k, until := range m.once {
		if !now.Before(until) {
			delete(m.once, k)
		}
	}
}

// Len is the number of keys held (for tests).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.windows) + len(m.seen) + len(m.once)
}
