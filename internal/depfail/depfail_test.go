package depfail_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/faultproxy"
	"github.com/erpgate/erpgate/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// redisReply is an error reply as go-redis returns it (redis.Error).
type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}

func TestUnavailableTable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"not found", fmt.Errorf("get user: %w", errors.New("not found")), false},
		{"config error", contract.NewError(http.StatusUnauthorized, contract.CodeUnauthenticated, "no"), false},
		{"config error wrapping a timeout", fmt.Errorf("%w: %w", contract.NewError(400, contract.CodeBadRequest, "x"), context.DeadlineExceeded), false},
		{"deadline", fmt.Errorf("store: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, true},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"op error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, true},
		{"redis pool timeout", redis.ErrPoolTimeout, true},
		{"redis nil", redis.Nil, false},
		{"pg connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"pg admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"pg unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"pg syntax", &pgconn.PgError{Code: "42601"}, false},
		{"pgx no rows", pgx.ErrNoRows, false},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"joined", errors.Join(errors.New("x"), fmt.Errorf("y: %w", io.EOF)), true},
		{"joined with an answer", errors.Join(io.EOF, contract.NewError(http.StatusConflict, contract.CodeConflict, "x")), false},
		{"redis LOADING reply", fmt.Errorf("incr: %w", redisReply("LOADING Redis is loading the dataset in memory")), true},
		{"redis WRONGTYPE reply", redisReply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := depfail.Unavailable(tc.err); got != tc.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	own := contract.NewError(http.StatusConflict, contract.CodeConflict, "exists")
	if got := depfail.Classify(fmt.Errorf("x: %w", own), nil); got != own {
		t.Errorf("a *contract.Error is its own answer, got %+v", got)
	}
	got := depfail.Classify(fmt.Errorf("query: %w", io.EOF), nil)
	if got.Status != 503 || got.Code != contract.CodeServiceUnavailable || got.Header.Get("Retry-After") != depfail.RetryAfter {
		t.Errorf("dependency failure: %+v", got)
	}
	if got := depfail.Classify(errors.New("bug"), nil); got.Status != 500 || got.Code != contract.CodeInternal || got.Header != nil {
		t.Errorf("anything else: %+v", got)
	}
	h := http.Header{}
	depfail.SetRetryAfter(h, 500)
	if h.Get("Retry-After") != "" {
		t.Error("Retry-After on a 500")
	}
	depfail.SetRetryAfter(h, 503)
	if h.Get("Retry-After") != depfail.RetryAfter {
		t.Error("no Retry-After on a 503")
	}
	h.Set("Retry-After", "30")
	depfail.SetRetryAfter(h, 503)
	if h.Get("Retry-After") != "30" {
		t.Error("a 503's own Retry-After was replaced")
	}
}

// TestPostgresDrops classifies the errors pgx really returns when Postgres
// goes away after the pool connected: on a live pooled connection, and on
// a new one.
func TestPostgresDrops(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Postgres(t)
	u := strings.Replace(dbURL, "127.0.0.1:5432", "%s", 1)
	if u == dbURL {
		t.Fatalf("test database URL %q is not on 127.0.0.1:5432", dbURL)
	}
	p := faultproxy.Start(t, "127.0.0.1:5432")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, fmt.Sprintf(u, p.Addr())+"&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var one int
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	for i := range 3 { // the pooled connection, then new dials
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		err := pool.QueryRow(qctx, "SELECT 1").Scan(&one)
		qcancel()
		if err == nil {
			t.Fatalf("query %d succeeded with Postgres cut", i)
		}
		if !depfail.Unavailable(err) {
			t.Errorf("query %d: %v (%T) is not classified as unavailable", i, err, err)
		}
	}
	p.Restore()
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	// A refusal by a reachable Postgres is not an outage.
	_, err = pool.Exec(ctx, "SELECT * FROM no_such_table")
	if err == nil || depfail.Unavailable(err) {
		t.Errorf("an SQL error %v is classified as unavailable", err)
	}
}

// TestRedisDrops does the same for go-redis (the auth service's counters
// and revocations).
func TestRedisDrops(t *testing.T) {
	t.Parallel()
	redisURL, prefix := testenv.Redis(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.Start(t, opts.Addr)
	opts.Addr = p.Addr()
	opts.MaxRetries = -1
	opts.DialTimeout = 2 * time.Second
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Incr(ctx, prefix+"n").Err(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	for i := range 3 {
		err := c.Incr(ctx, prefix+"n").Err()
		if err == nil {
			t.Fatalf("command %d succeeded with Redis cut", i)
		}
		if !depfail.Unavailable(err) {
			t.Errorf("command %d: %v (%T) is not classified as unavailable", i, err, err)
		}
	}
	p.Restore()
	if err := c.Incr(ctx, prefix+"n").Err(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	// A reply error from a reachable Redis is not an outage.
	err = c.Do(ctx, "NOSUCHCOMMAND").Err()
	if err == nil || depfail.Unavailable(err) {
		t.Errorf("a command error %v is classified as unavailable", err)
	}
	if err := c.Get(ctx, prefix+"absent").Err(); !errors.Is(err, redis.Nil) || depfail.Unavailable(err) {
		t.Errorf("redis.Nil: %v", err)
	}
}

// BenchmarkUnavailableRefusal: the cost the edge adds to each refused
// token (a flood of bad tokens asks this for every one).
func BenchmarkUnavailableRefusal(b *testing.B) {
	err := fmt.Errorf("%w: signature", errors.New("access token signature invalid"))
	b.ReportAllocs()
	for b.Loop() {
		if depfail.Unavailable(err) {
			b.Fatal("classified as unavailable")
		}
	}
}
