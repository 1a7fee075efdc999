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
// ETag: the bases of later merges. Put may drop an entry (bounded stores);
// Get reports false for an entry it does not hold.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, body []byte) error
}

// baseKey names a representation: the company (bases never cross
// companies), the path the edge routed and the entity tag.
func baseKey(company, path, etag string) string {
	return company + "\x00" + path + "\x00" + etag
}

// memoryStore is a size-bounded LRU with a TTL: at most maxEntries
// representations and maxBytes of them.
type memoryStore struct {
	mu         sync.Mutex
	ttl        time.Duration
	maxEntries int
	maxBytes   int64
	bytes      int64
	ll         *list.List // front: most recent
	items      map[string]*list.Element
	now        func() time.Time
}

type memEntry struct {
	key     string
	body    []byte
	expires time.Time
}

func newMemoryStore(ttl time.Duration, maxEntries int, maxBytes int64) *memoryStore {
	return &memoryStore{ttl: ttl, maxEntries: maxEntries, maxBytes: maxBytes,
		ll: list.New(), items: make(map[string]*list.Element), now: time.Now}
}

func (s *memoryStore) Get(_ context.Context, key string) ([]byte, bool, error) {
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

func (s *memoryStore) Put(_ context.Context, key string, body []byte) error {
	if int64(len(body)) > s.maxBytes {
		return nil
	}
	body = append([]byte(nil), body...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[key]; ok {
		s.remove(el)
	}
	s.items[key] = s.ll.PushFront(&memEntry{key: key, body: body, expires: s.now().Add(s.ttl)})
	s.bytes += int64(len(body))
	for s.ll.Len() > s.maxEntries || s.bytes > s.maxBytes {
		s.remove(s.ll.Back())
	}
	return nil
}

func (s *memoryStore) remove(el *list.Element) {
	e := s.ll.Remove(el).(*memEntry)
	delete(s.items, e.key)
	s.bytes -= int64(len(e.body))
}

// redisStore keeps bases in the app's Redis, shared by every instance,
// each under its TTL (Redis' maxmemory policy bounds the whole; each entry
// is bounded by max_body). Keys are hashed: company ids and paths do not
// appear in Redis.
type redisStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

func (s *redisStore) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	return s.prefix + "merge:" + hex.EncodeToString(sum[:])
}

func (s *redisStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := s.rdb.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (s *redisStore) Put(ctx context.Context, key string, body []byte) error {
	return s.rdb.Set(ctx, s.key(key), body, s.ttl).Err()
}
