// Package testenv gives tests their own Postgres database and Redis key
// prefix on the servers `make test` provides. A test that needs a server fails
// when it cannot reach it; it never skips. It owns no state shared between
// tests (each gets its own database and prefix); it imports nothing of ours
// and no Caddy.
//
// ERP_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
// names the maintenance database used to create per-test databases;
// ERP_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) the Redis server;
// ERP_TEST_NATS_URL (default nats://127.0.0.1:4222) a NATS server with
// JetStream (tests name their own streams and delete them).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// PostgresAdminURL is the URL of the database tests create theirs from.
func PostgresAdminURL() string {
	if v := os.Getenv("ERP_TEST_POSTGRES_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// RedisURL is the Redis server tests use.
func RedisURL() string {
	if v := os.Getenv("ERP_TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/0"
}

// NATSURL is the NATS server (with JetStream) tests use; the test fails
// when it does not answer.
func NATSURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ERP_TEST_NATS_URL")
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("testenv: NATS unreachable at %s (run `make test`, which starts it): %v", redact(u), err)
	}
	nc.Close()
	return u
}

// Name is a random name for a test's own resources (a stream, a key prefix).
func Name() string { return "erpgate_t_" + randomName() }

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Postgres creates a fresh, empty database for the test and returns its URL.
// The database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := PostgresAdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: Postgres unreachable at %s (run `make test`, which starts it): %v", redact(admin), err)
	}
	defer conn.Close(context.Background())
	name := "erpgate_t_" + randomName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop database: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database: %v", err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: parse admin URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Redis checks that Redis answers and returns its URL and a fresh key prefix;
// every key under the prefix is deleted when the test ends.
func Redis(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	redisURL = RedisURL()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("testenv: ERP_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("testenv: Redis unreachable at %s (run `make test`, which starts it): %v", redact(redisURL), err)
	}
	prefix = "erpgate_t_" + randomName() + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return redisURL, prefix
}

// RedisClient is Redis plus a client for the test's own checks.
func RedisClient(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	u, prefix := Redis(t)
	opts, _ := redis.ParseURL(u)
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c, prefix
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxx")
		}
	}
	return strings.TrimSpace(u.String())
}
