package authsvc

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// codeBox keeps the short-lived secrets of the messaging work (the hashes
// of magic-link tokens, sealed one-time codes) with an expiry: in Redis
// when the service has it (shared by every instance, with a TTL), in
// process otherwise (on the service's clock). Every operation is atomic,
// so a value taken or deleted is taken once under parallel calls.
type codeBox interface {
	// Put stores value under key for ttl, replacing what was there.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get is the value under key, if it has not expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Take gets and deletes the value under key, once.
	Take(ctx context.Context, key string) ([]byte, bool, error)
	// DeleteIf deletes key if it still holds value: true for the one
	// caller that deleted it.
	DeleteIf(ctx context.Context, key string, value []byte) (bool, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
}

var (
	takeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
`)
	deleteIfScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)
)

type redisBox struct {
	rdb    redis.UniversalClient
	prefix string
}

func (b *redisBox) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := b.rdb.Set(ctx, b.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("code box: put: %w", err)
	}
	return nil
}

func (b *redisBox) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := b.rdb.Get(ctx, b.prefix+key).Bytes()
	if err == redis.Nil {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("code box: get: %w", err)
	}
	return v, true, nil
}

func (b *redisBox) Take(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := takeScript.Run(ctx, b.rdb, []string{b.prefix + key}).Text()
	if err == redis.Nil {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("code box: take: %w", err)
	}
	return []byte(v), true, nil
}

func (b *redisBox) DeleteIf(ctx context.Context, key string, value []byte) (bool, error) {
	n, err := deleteIfScript.Run(ctx, b.rdb, []string{b.prefix + key}, value).Int64()
	if err != nil {
		return false, fmt.Errorf("code box: delete: %w", err)
	}
	return n == 1, nil
}

func (b *redisBox) Delete(ctx context.Context, key string) error {
	if err := b.rdb.Del(ctx, b.prefix+key).Err(); err != nil {
		return fmt.Errorf("code box: delete: %w", err)
	}
	return nil
}

type memBoxEntry struct {
	value   []byte
	expires time.Time
}

// memBox is the in-process codeBox, on the service's clock.
type memBox struct {
	clock   Clock
	mu      sync.Mutex
	entries map[string]memBoxEntry
	sweep   time.Time
}

func newMemBox(clock Clock) *memBox { return &memBox{clock: clock, entries: map[string]memBoxEntry{}} }

func (b *memBox) liveLocked(key string) (memBoxEntry, bool) {
	now := b.clock.Now()
	if now.After(b.sweep) {
		for k, e := range b.entries {
			if !now.Before(e.expires) {
				delete(b.entries, k)
			}
		}
		b.sweep = now.Add(time.Minute)
	}
	e, ok := b.entries[key]
	if ok && !now.Before(e.expires) {
		delete(b.entries, key)
		return memBoxEntry{}, false
	}
	return e, ok
}

func (b *memBox) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.entries[key] = memBoxEntry{value: bytes.Clone(value), expires: b.clock.Now().Add(ttl)}
	return nil
}

func (b *memBox) Get(_ context.Context, key string) ([]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.liveLocked(key)
	return bytes.Clone(e.value), ok, nil
}

func (b *memBox) Take(_ context.Context, key string) ([]byte, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.liveLocked(key)
	delete(b.entries, key)
	return e.value, ok, nil
}

func (b *memBox) DeleteIf(_ context.Context, key string, value []byte) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.liveLocked(key)
	if !ok || !bytes.Equal(e.value, value) {
		return false, nil
	}
	delete(b.entries, key)
	return true, nil
}

func (b *memBox) Delete(_ context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
	return nil
}
