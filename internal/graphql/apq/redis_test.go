package apq

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/testenv"
)

func TestRedisKeyAndTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.RedisClient(t)
	s := NewRedis(rdb, prefix, time.Hour)
	const q = `{ customers { nodes { email } } }`
	h := Hash(q)
	if err := s.Put(ctx, h, q); err != nil {
		t.Fatal(err)
	}
	key := prefix + contract.RedisKeyAPQ + h
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != q {
		t.Fatalf("key %s = %q, %v; want the query", key, v, err)
	}
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL after Put = %v, %v; want about 1h", ttl, err)
	}
	// shorten the TTL by hand: a Get puts it back to the store's TTL
	if err := rdb.Expire(ctx, key, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Get(ctx, h); !ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if ttl, err := rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 59*time.Minute {
		t.Fatalf("PTTL after Get = %v, %v; want refreshed to about 1h", ttl, err)
	}
}

// TestRedisBadEntries: a value Put did not write (another text under the
// hash, an oversized one) is a miss, and the next Put replaces it.
func TestRedisBadEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.RedisClient(t)
	s := NewRedis(rdb, prefix, time.Hour)
	const q = `{ products { nodes { sku } } }`
	h := Hash(q)
	key := prefix + contract.RedisKeyAPQ + h
	for name, v := range map[string]string{
		"other text": `{ customers { nodes { email } } }`,
		"oversized":  strings.Repeat(" ", MaxQueryBytes+1),
	} {
		if err := rdb.Set(ctx, key, v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Get(ctx, h); ok || err != nil {
			t.Fatalf("%s: Get = %q, %v, %v; want a miss", name, got[:min(len(got), 40)], ok, err)
		}
		if err := s.Put(ctx, h, q); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := s.Get(ctx, h); !ok || err != nil || got != q {
			t.Fatalf("%s: Get after Put = %q, %v, %v", name, got, ok, err)
		}
	}
}

// TestRedisUnreachable: a Redis that does not answer is an error (a
// dependency failure), never a miss, and none of the client's errors.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := NewRedis(rdb, "t:", time.Hour)
	const q = `{ invoices { nodes { number } } }`
	_, ok, err := s.Get(context.Background(), Hash(q))
	if err == nil || ok {
		t.Fatalf("Get = %v, %v; want an error", ok, err)
	}
	err2 := s.Put(context.Background(), Hash(q), q)
	for _, e := range []error{err, err2} {
		if e == nil || errors.Is(e, ErrInvalidHash) || errors.Is(e, ErrHashMismatch) || errors.Is(e, ErrTooLarge) {
			t.Fatalf("error %v; want a dependency failure", e)
		}
	}
}

func BenchmarkRedisGet(b *testing.B) {
	rdb, prefix := testenv.RedisClient(b)
	s := NewRedis(rdb, prefix, time.Hour)
	ctx := context.Background()
	const q = `{ invoices(first: 20) { nodes { number status total { amount currency } customer { display_name email } } } }`
	h := Hash(q)
	if err := s.Put(ctx, h, q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, err := s.Get(ctx, h); !ok || err != nil {
				b.Errorf("Get = %v, %v", ok, err)
				return
			}
		}
	})
}
