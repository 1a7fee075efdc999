package merge

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps the representations the edge served, by company, path and
// ETag: the bases of later merges. Both stores are bounded per company
// (one company's traffic never evicts another's bases beyond its share);
// Put may drop an entry; Get reports false for an entry it does not hold.
type Store interface {
	Get(ctx context.Context, company, key string) ([]byte, bool, error)
	Put(ctx context.Context, company, key string, body []byte) error
}

// baseKey names a representation: the company (bases never cross
// companies), the path the edge routed and the entity tag.
func baseKey(company, path, etag string) string {
	return company + "\x00" + path + "\x00" + etag
}

// memoryStore is a size-bounded LRU with a TTL: at most maxEntries
// representations and maxBytes of them, and at most perCompany of one
// company (its oldest go first).
type memoryStore struct {
	mu         sync.Mutex
	ttl        time.Duration
	maxEntries int
	perCompany int
	maxBytes   int64
	bytes      int64
	ll         *list.List // front: most recent
	items      map[string]*list.Element
	companies  map[string]*list.List // each company's keys, oldest first
	now        func() time.Time
}

type memEntry struct {
	key     string
	company string
	body    []byte
	expires time.Time
	inCo    *list.Element // in companies[company]
}

func newMemoryStore(ttl time.Duration, maxEntries, perCompany int, maxBytes int64) *memoryStore {
	return &memoryStore{ttl: ttl, maxEntries: maxEntries, perCompany: perCompany, maxBytes: maxBytes,
		ll: list.New(), items: make(map[string]*list.Element), companies: make(map[string]*list.List), now: time.Now}
}

func (s *memoryStore) Get(_ context.Context, _, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.items[key]
	if !ok {
		return nil, false, nil
	}
	e := el.Value.(*memEntry)
	if !s.now().Before(e.expires) {
		s.remove(el)
		return nil, false, nil
	}
	s.ll.MoveToFront(el)
	return e.body, true, nil
}

func (s *memoryStore) Put(_ context.Context, company, key string, body []byte) error {
	if int64(len(body)) > s.maxBytes {
		return nil
	}
	body = append([]byte(nil), body...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	co := s.companies[company]
	if co == nil {
		co = list.New()
		s.companies[company] = co
	}
	e := &memEntry{key: key, company: company, body: body, expires: s.now().Add(s.ttl)}
	e.inCo = co.PushBack(key)
	s.items[key] = s.ll.PushFront(e)
	s.bytes += int64(len(body))
	for co.Len() > s.perCompany {
		s.remove(s.items[co.Front().Value.(string)])
	}
	for s.ll.Len() > s.maxEntries || s.bytes > s.maxBytes {
		s.remove(s.ll.Back())
	}
	return nil
}

func (s *memoryStore) remove(el *list.Element) {
	e := s.ll.Remove(el).(*memEntry)
	delete(s.items, e.key)
	s.bytes -= int64(len(e.body))
	if co := s.companies[e.company]; co != nil {
		co.Remove(e.inCo)
		if co.Len() == 0 {
			delete(s.companies, e.company)
		}
	}
}

// redisStore keeps bases in the app's Redis, shared by every instance,
// each under its TTL and at most perCompany per company: a sorted set per
// company indexes its bases in the order they were stored (a counter gives
// the order: puts in one millisecond still have one), and the put script
// drops the oldest beyond the bound in the same step. Every base lives as
// long as the TTL, so the oldest index members are also the first to have
// expired. Keys are hashed (company ids and paths do not appear in Redis);
// a company's keys share a hash tag, so a Redis Cluster keeps them in one
// slot for the script.
//
//	<prefix>merge:{<company hash>}:i            the company's index (ZSET)
//	<prefix>merge:{<company hash>}:n            the index's counter
//	<prefix>merge:{<company hash>}:<key hash>   a base
type redisStore struct {
	rdb        redis.UniversalClient
	prefix     string
	ttl        time.Duration
	perCompany int
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func (s *redisStore) companyBase(company string) string {
	return s.prefix + "merge:{" + hash16(company) + "}:"
}

// putScript stores a base and keeps its company's bound. KEYS[1] the base,
// KEYS[2] the company's index, KEYS[3] its counter; ARGV: body, ttl ms,
// bound.
var putScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], seq, KEYS[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
	local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
	redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
	redis.call('DEL', unpack(old))
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return over
`)

func (s *redisStore) Get(ctx context.Context, company, key string) ([]byte, bool, error) {
	b, err := s.rdb.Get(ctx, s.companyBase(company)+hash16(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (s *redisStore) Put(ctx context.Context, company, key string, body []byte) error {
	base := s.companyBase(company)
	return putScript.Run(ctx, s.rdb, []string{base + hash16(key), base + "i", base + "n"},
		body, s.ttl.Milliseconds(), s.perCompany).Err()
}
