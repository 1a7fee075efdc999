package idempotency

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps keys in Redis under prefix: every edge instance on the same
// Redis sees the same keys, so a retry landing on another instance replays
// the first instance's answer.
type Redis struct {
	rdb        redis.UniversalClient
	prefix     string
	ttl, lease time.Duration
}

// NewRedis makes a Redis store: keys are prefix+key, answers kept for ttl,
// locks for lease.
func NewRedis(rdb redis.UniversalClient, prefix string, ttl, lease time.Duration) *Redis {
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl, lease: lease}
}

// Turn a lock into an answer, or drop it, only if the caller's lock is
// still the value (its lease may have expired and another request taken it).
var (
	completeScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0`)
	releaseScript  = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end return 0`)
)

// Begin takes key's lock (SET NX) or reads what holds it.
func (s *Redis) Begin(ctx context.Context, key, fp string) (Result, error) {
	k := s.prefix + key
	for range 3 { // the holder may vanish between SET NX and GET: try again
		tok := fp + newToken()
		ok, err := s.rdb.SetNX(ctx, k, "L"+tok, s.lease).Result()
		if err != nil {
			return Result{}, err
		}
		if ok {
			return Result{State: Started, Token: tok}, nil
		}
		v, err := s.rdb.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Result{}, err
		}
		return decode(v, fp)
	}
	return Result{}, errors.New("idempotency: the key keeps changing")
}

// Complete stores rec as key's answer if token still holds the lock.
func (s *Redis) Complete(ctx context.Context, key, token string, rec *Record) error {
	if len(token) < fpLen {
		return ErrNotHolder
	}
	v, err := doneValue(token[:fpLen], rec)
	if err != nil {
		return err
	}
	n, err := completeScript.Run(ctx, s.rdb, []string{s.prefix + key}, "L"+token, v, s.ttl.Milliseconds()).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotHolder
	}
	return nil
}

// Release drops key's lock if token holds it.
func (s *Redis) Release(ctx context.Context, key, token string) error {
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.prefix + key}, "L"+token).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotHolder
	}
	return nil
}
