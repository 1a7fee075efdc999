package respcache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the store shared by every edge instance. Keys (prefix first):
//
//	<prefix>respcache:{<group>}:g                 the group's generation (INCR)
//	<prefix>respcache:{<group>}:<gen>:<variant>    an entry (SET PX)
//
// The group in braces is a Redis Cluster hash tag, so a group's generation
// and entries share a slot and the lookup script may read both.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis makes a Redis store whose keys start with prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix + "respcache:"}
}

// lookupScript reads the generation and the entry of that generation in
// one round trip: KEYS[1] the generation key, ARGV[1] the entry key before
// the generation, ARGV[2] the variant.
var lookupScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1]) or '0'
return {g, redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])}
`)

func (s *Redis) genKey(group string) string { return s.prefix + "{" + group + "}:g" }
func (s *Redis) entryBase(group string) string {
	return s.prefix + "{" + group + "}:"
}

// Lookup implements Store.
func (s *Redis) Lookup(ctx context.Context, k Key) (uint64, []byte, error) {
	res, err := lookupScript.Run(ctx, s.client, []string{s.genKey(k.Group)}, s.entryBase(k.Group), k.Variant).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("respcache: redis lookup: %w", err)
	}
	if len(res) < 1 {
		return 0, nil, errors.New("respcache: redis lookup: short answer")
	}
	gs, _ := res[0].(string)
	gen, err := strconv.ParseUint(gs, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("respcache: redis lookup: generation %q: %w", gs, err)
	}
	if len(res) < 2 {
		return gen, nil, nil // Lua drops a trailing nil
	}
	v, ok := res[1].(string)
	if !ok {
		return gen, nil, nil
	}
	return gen, []byte(v), nil
}

// Put implements Store. An entry written under a generation a concurrent
// write already bumped is unreachable, so no check is needed.
func (s *Redis) Put(ctx context.Context, k Key, gen uint64, val []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	key := s.entryBase(k.Group) + strconv.FormatUint(gen, 10) + ":" + k.Variant
	if err := s.client.Set(ctx, key, val, ttl).Err(); err != nil {
		return fmt.Errorf("respcache: redis put: %w", err)
	}
	return nil
}

// Invalidate implements Store.
func (s *Redis) Invalidate(ctx context.Context, group string) error {
	if err := s.client.Incr(ctx, s.genKey(group)).Err(); err != nil {
		return fmt.Errorf("respcache: redis invalidate: %w", err)
	}
	return nil
}
