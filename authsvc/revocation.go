package authsvc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/config"
)

// revocations tells every edge instance that sessions were revoked, so their
// access tokens stop working before they expire. With Redis: a key
// `<prefix>revoked:sid:<sid>` per session (TTL: an access token's lifetime)
// and a message with the bare session id on channel `<prefix>revocations`.
// In process: the same, in memory.
type revocations interface {
	Revoke(ctx context.Context, sids []string, ttl time.Duration) error
	IsRevoked(ctx context.Context, sid string) (bool, error)
	// Subscribe calls fn with every session id revoked from now on, until
	// ctx ends. It returns once the subscription is in place.
	Subscribe(ctx context.Context, fn func(sid string)) error
}

type redisRevocations struct {
	rdb    redis.UniversalClient
	prefix string
	logger *zap.Logger
}

func (r *redisRevocations) Revoke(ctx context.Context, sids []string, ttl time.Duration) error {
	if len(sids) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, sid := range sids {
			p.Set(ctx, r.prefix+config.RedisKeyRevokedSession+sid, 1, ttl)
		}
		for _, sid := range sids {
			p.Publish(ctx, r.prefix+config.RedisChannelRevocation, sid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	return nil
}

func (r *redisRevocations) IsRevoked(ctx context.Context, sid string) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.prefix+config.RedisKeyRevokedSession+sid).Result()
	if err != nil {
		return false, fmt.Errorf("check revocation: %w", err)
	}
	return n > 0, nil
}

func (r *redisRevocations) Subscribe(ctx context.Context, fn func(string)) error {
	ps := r.rdb.Subscribe(ctx, r.prefix+config.RedisChannelRevocation)
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		_ = ps.Close()
		return fmt.Errorf("subscribe to revocations: %w", err)
	}
	go func() {
		defer ps.Close()
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				fn(m.Payload)
			}
		}
	}()
	return nil
}

type memRevocations struct {
	clock   Clock
	mu      sync.Mutex
	revoked map[string]time.Time
	subs    map[int]func(string)
	next    int
}

func newMemRevocations(clock Clock) *memRevocations {
	return &memRevocations{clock: clock, revoked: map[string]time.Time{}, subs: map[int]func(string){}}
}

func (r *memRevocations) Revoke(_ context.Context, sids []string, ttl time.Duration) error {
	now := r.clock.Now()
	r.mu.Lock()
	for sid, exp := range r.revoked {
		if !now.Before(exp) {
			delete(r.revoked, sid)
		}
	}
	for _, sid := range sids {
		r.revoked[sid] = now.Add(ttl)
	}
	subs := make([]func(string), 0, len(r.subs))
	for _, fn := range r.subs {
		subs = append(subs, fn)
	}
	r.mu.Unlock()
	for _, fn := range subs {
		for _, sid := range sids {
			fn(sid)
		}
	}
	return nil
}

func (r *memRevocations) IsRevoked(_ context.Context, sid string) (bool, error) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.revoked[sid]
	return ok && now.Before(exp), nil
}

func (r *memRevocations) Subscribe(ctx context.Context, fn func(string)) error {
	r.mu.Lock()
	id := r.next
	r.next++
	r.subs[id] = fn
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	})
	return nil
}
