package authsvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// counters are the attempt counters and one-time marks: in Redis when
// configured (shared by every instance), in process otherwise. Both are
// atomic, so limits hold under parallel requests.
type counters interface {
	// Reserve counts one attempt on key within window and reports whether it
	// is within limit; if not, how long until the window ends.
	Reserve(ctx context.Context, key string, limit int64, window time.Duration) (ok bool, retryAfter time.Duration, err error)
	// Refund gives back one reserved attempt (a success does not count).
	Refund(ctx context.Context, key string) error
	// MarkOnce sets key for ttl and reports whether it was not set before.
	MarkOnce(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Marked reports whether key is set (a mark that has not expired).
	Marked(ctx context.Context, key string) (bool, error)
	// Count is the number of attempts counted on key in its current
	// window (0 when none), without counting one (the risk signals read
	// the failed logins of an account).
	Count(ctx context.Context, key string) (int64, error)
}

// reserveScript increments KEYS[1], starts its window on the first attempt,
// and returns the count and the milliseconds left in the window.
var reserveScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
`)

// refundScript decrements KEYS[1] if it still exists and is positive.
var refundScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0
`)

type redisCounters struct {
	rdb    redis.UniversalClient
	prefix string
}

func (c *redisCounters) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (bool, time.Duration, error) {
	res, err := reserveScript.Run(ctx, c.rdb, []string{c.prefix + key}, window.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		return false, 0, fmt.Errorf("reserve attempt: %w", err)
	}
	return res[0] <= limit, time.Duration(res[1]) * time.Millisecond, nil
}

func (c *redisCounters) Refund(ctx context.Context, key string) error {
	if err := refundScript.Run(ctx, c.rdb, []string{c.prefix + key}).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("refund attempt: %w", err)
	}
	return nil
}

func (c *redisCounters) MarkOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := c.rdb.SetNX(ctx, c.prefix+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("mark once: %w", err)
	}
	return ok, nil
}

func (c *redisCounters) Marked(ctx context.Context, key string) (bool, error) {
	n, err := c.rdb.Exists(ctx, c.prefix+key).Result()
	if err != nil {
		return false, fmt.Errorf("marked: %w", err)
	}
	return n > 0, nil
}

func (c *redisCounters) Count(ctx context.Context, key string) (int64, error) {
	n, err := c.rdb.Get(ctx, c.prefix+key).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count attempts: %w", err)
	}
	return n, nil
}

type memEntry struct {
	n       int64
	expires time.Time
}

// memCounters is the in-process equivalent, with the service's clock.
type memCounters struct {
	clock   Clock
	mu      sync.Mutex
	entries map[string]memEntry
	sweep   time.Time
}

func newMemCounters(clock Clock) *memCounters {
	return &memCounters{clock: clock, entries: map[string]memEntry{}}
}

// getLocked returns the live entry for key, dropping expired ones now and then.
func (c *memCounters) getLocked(key string, now time.Time) (memEntry, bool) {
	if now.After(c.sweep) {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		c.sweep = now.Add(time.Minute)
	}
	e, ok := c.entries[key]
	if ok && !now.Before(e.expires) {
		delete(c.entries, key)
		return memEntry{}, false
	}
	return e, ok
}

func (c *memCounters) Reserve(_ context.Context, key string, limit int64, window time.Duration) (bool, time.Duration, error) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.getLocked(key, now)
	if !ok {
		e = memEntry{expires: now.Add(window)}
	}
	e.n++
	c.entries[key] = e
	return e.n <= limit, e.expires.Sub(now), nil
}

func (c *memCounters) Refund(_ context.Context, key string) error {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.getLocked(key, now); ok && e.n > 0 {
		e.n--
		c.entries[key] = e
	}
	return nil
}

func (c *memCounters) MarkOnce(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.getLocked(key, now); ok {
		return false, nil
	}
	c.entries[key] = memEntry{n: 1, expires: now.Add(ttl)}
	return true, nil
}

func (c *memCounters) Marked(_ context.Context, key string) (bool, error) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.getLocked(key, now)
	return ok, nil
}

func (c *memCounters) Count(_ context.Context, key string) (int64, error) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, _ := c.getLocked(key, now)
	return e.n, nil
}
