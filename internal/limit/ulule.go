package limit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
)

// ULStore adapts a Store to ulule/limiter's limiter.Store, for one sliding
// limit per key (limiter.Rate's Limit per Period): any code written for
// ulule/limiter runs on our sliding-window log, in memory or in Redis.
// Unlike ulule's own stores, a refused Get or Increment consumes nothing.
type ULStore struct {
	Store  Store
	Clock  Clock
	Prefix string
}

// Get counts one request and returns the limit's state.
func (u ULStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return u.decide(ctx, key, 1, rate)
}

// Peek returns the state without counting.
func (u ULStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return u.decide(ctx, key, 0, rate)
}

// Increment counts count requests, all or none.
func (u ULStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	return u.decide(ctx, key, count, rate)
}

// Reset forgets key.
func (u ULStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	switch s := u.Store.(type) {
	case *Memory:
		s.Delete(u.Prefix + key)
	case *Redis:
		c, ok := s.client.(redis.Cmdable)
		if !ok {
			return limiter.Context{}, fmt.Errorf("limit: reset: client cannot DEL")
		}
		if err := c.Del(ctx, u.Prefix+key).Err(); err != nil {
			return limiter.Context{}, fmt.Errorf("limit: reset: %w", err)
		}
	default:
		return limiter.Context{}, fmt.Errorf("limit: reset: unsupported store %T", u.Store)
	}
	now := u.Clock.Now()
	return limiter.Context{Limit: rate.Limit, Remaining: rate.Limit, Reset: now.Unix()}, nil
}

func (u ULStore) decide(ctx context.Context, key string, cost int64, rate limiter.Rate) (limiter.Context, error) {
	l := [1]Limit{{Key: u.Prefix + key, Kind: Sliding, Max: rate.Limit, Window: rate.Period}}
	var st [1]State
	refused, err := u.Store.Decide(ctx, u.Clock.Now(), cost, l[:], st[:])
	if err != nil {
		return limiter.Context{}, err
	}
	return limiter.Context{
		Limit:     rate.Limit,
		Remaining: st[0].Remaining(rate.Limit),
		Reset:     st[0].Reset.Unix(),
		Reached:   refused >= 0 || (cost == 0 && st[0].Used >= rate.Limit),
	}, nil
}

// Interface guards
var _ limiter.Store = ULStore{}
