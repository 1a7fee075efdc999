// Package revocation drives logouts and the edge's view of revocations in
// the running binary while Redis and Postgres fail: two gateway processes
// share one Postgres (each test its own database, reached through a fault
// proxy the test can cut) and a private redis-server the test kills and
// starts again (issue #20, "A logout is never lost").
package revocation

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/faultproxy"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/redisproc"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// caddyfile: the auth service, and /whoami behind erp_auth (any verified
// token: 200 "ok"), with the edge's revocation_staleness from the environment.
const caddyfile = `{
	admin {$ERP_ADMIN}
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
	}
}

http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /api/v1/auth/* {
			erp_authsvc
		}
		handle /.well-known/* {
			erp_authsvc
		}
		handle /whoami {
			erp_auth {
				authenticated_only
				api_keys off
				revocation_staleness {$ERP_REVOCATION_STALENESS}
			}
			respond "ok" 200
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}
`

// stack is two gateway processes on one Postgres database (through pg, a
// fault proxy) and one private redis-server.
type stack struct {
	a, b   *stacktest.Instance
	redis  *redisproc.Server
	pg     *faultproxy.Proxy
	rdb    *redis.Client // the test's own client of the private Redis
	prefix string
}

// stackOptions: the edge's staleness bound, and a proxy of B's own in front
// of Redis when bRedis is set.
type stackOptions struct {
	staleness string // default 5s
	bRedis    *refusingProxy
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	srv := redisproc.Start(t)
	pgURL, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	pg := faultproxy.Start(t, pgURL.Host)
	pgURL.Host = pg.Addr()
	if o.staleness == "" {
		o.staleness = "5s"
	}
	s := &stack{redis: srv, pg: pg, prefix: "rev" + strconv.Itoa(srv.Port) + ":"}
	env := map[string]string{
		"ERP_POSTGRES_URL":         pgURL.String(),
		"ERP_REDIS_URL":            srv.URL,
		"ERP_KEY_PREFIX":           s.prefix,
		"ERP_MASTER_KEY":           testMasterKey,
		"ERP_REVOCATION_STALENESS": o.staleness,
	}
	s.a = stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: env})
	envB := map[string]string{}
	for k, v := range env {
		envB[k] = v
	}
	if o.bRedis != nil {
		o.bRedis.start(t, "127.0.0.1:"+strconv.Itoa(srv.Port))
		envB["ERP_REDIS_URL"] = "redis://" + o.bRedis.addr + "/0"
	}
	s.b = stacktest.Start(t, stacktest.Options{Config: caddyfile, Env: envB})
	s.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port), MaxRetries: -1})
	t.Cleanup(func() { _ = s.rdb.Close() })
	return s
}

// session is a logged-in session: its tokens and id.
type session struct {
	demoauth.Tokens
	sid string
}

func login(t *testing.T, base string) session {
	t.Helper()
	tok := demoauth.Login(t, base, "alice@acme.test", "acme")
	_, payload, _ := strings.Cut(tok.Access, ".")
	payload, _, _ = strings.Cut(payload, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var claims struct {
		Sid string `json:"sid"`
	}
	if err != nil || json.Unmarshal(b, &claims) != nil || claims.Sid == "" {
		t.Fatalf("access token without sid: %v", err)
	}
	return session{tok, claims.Sid}
}

// whoami is the status and error code of /whoami with the session's token.
func whoami(t *testing.T, in *stacktest.Instance, s session) (int, string) {
	t.Helper()
	r := httpt.Get(t, in.URL+"/whoami", demoauth.Bearer(s.Access))
	if r.StatusCode == 200 {
		return 200, ""
	}
	return r.StatusCode, r.Envelope(t).Code()
}

// expectAccepted: the session's token works at the instance.
func expectAccepted(t *testing.T, in *stacktest.Instance, s session, when string) {
	t.Helper()
	if st, code := whoami(t, in, s); st != 200 {
		t.Fatalf("%s: %s refused a live token: %d %s", when, in.URL, st, code)
	}
}

// refusedWithin waits (at most d) until every instance refuses the
// session's token with 401 TOKEN_REVOKED, and says how long it took.
func refusedWithin(t *testing.T, d time.Duration, s session, ins ...*stacktest.Instance) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		all := true
		var last string
		for _, in := range ins {
			st, code := whoami(t, in, s)
			if st != 401 || code != contract.CodeTokenRevoked {
				all, last = false, in.URL+": "+strconv.Itoa(st)+" "+code
				break
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("revoked token still not refused after %s (%s)", d, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// logout posts a logout with the session's token to the instance.
func logout(t *testing.T, in *stacktest.Instance, s session, all bool) *httpt.Response {
	t.Helper()
	body := `{}`
	if all {
		body = `{"all":true}`
	}
	return httpt.Do(t, "POST", in.URL+"/api/v1/auth/logout", []byte(body), demoauth.Bearer(s.Access))
}

// markInRedis reports whether the private Redis holds the session's
// revocation mark (what the auth service publishes, and what edges resync).
func (s *stack) markInRedis(sid string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := s.rdb.Exists(ctx, s.prefix+contract.RedisKeyRevokedSession+sid).Result()
	return err == nil && n > 0
}

// refusingProxy is a TCP proxy in front of Redis for one instance. Unlike
// internal/faultproxy (which accepts and drops), a cut one refuses
// connections outright (its listener is closed), as a stopped server does.
// After restoreFlaky it admits two connections (the edge's two
// subscriptions, revocations and the security blocklist, come back), then refuses the next `refuse` ones before it lets everything
// through: the resync that follows a re-subscription meets "connection
// refused" for a while, as in the issue's trace.
type refusingProxy struct {
	addr   string
	target string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
	admit   int // connections to admit before refusing
	refuse  int // connections to refuse (closed at once) after that
	stopped bool
}

func (p *refusingProxy) start(t *testing.T, target string) {
	t.Helper()
	// A reserved port: while cut, the port is free, and no other test may take it.
	addr := "127.0.0.1:" + strconv.Itoa(stacktest.FreePort(t))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p.addr, p.target, p.conns = addr, target, map[net.Conn]bool{}
	p.serve(ln)
	t.Cleanup(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		p.cut()
	})
}

func (p *refusingProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			drop := false
			if p.admit > 0 {
				p.admit--
			} else if p.refuse > 0 {
				p.refuse--
				drop = true
			}
			if !drop {
				p.conns[c] = true
			}
			p.mu.Unlock()
			if drop {
				_ = c.(*net.TCPConn).SetLinger(0) // a reset, as a refusing peer sends
				_ = c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
}

func (p *refusingProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes the listener (new connections are refused) and every connection.
func (p *refusingProxy) cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
}

// restoreFlaky listens again on the same address: two connections admitted,
// the next refuse refused, then all.
func (p *refusingProxy) restoreFlaky(t *testing.T, refuse int) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the old listener's port may linger an instant
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		if !errors.Is(err, net.ErrClosed) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	// three subscriptions reconnect first: the revocation listener's, the
	// security blocklist's and the fleet's (each pub/sub on its own
	// connection); the connections after them — the resync's — are refused
	p.admit, p.refuse = 3, refuse
	p.mu.Unlock()
	p.serve(ln)
}
