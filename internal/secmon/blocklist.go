package secmon

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/rediscluster"
)

// Blocklist is the set of client addresses every edge instance refuses
// for a while. Blocked is what a request pays: an atomic load when nothing
// is blocked, else a lookup in an immutable map (copied on each block:
// blocks are rare, checks are every request), no lock, no allocation.
//
// With Redis, Block writes a key per address (`<prefix>sec:block:<ip>`,
// expiring with the block) and announces it on `<prefix>sec:blocks`; Run
// (every instance) listens and loads the keys at each (re)subscription, so
// an instance that starts or reconnects late still knows every block.
// Without Redis the block holds in this process only.
type Blocklist struct {
	rdb    redis.UniversalClient // nil: this process only
	prefix string
	now    func() time.Time
	log    *zap.Logger

	mu sync.Mutex                               // serialises writers
	m  atomic.Pointer[map[netip.Addr]time.Time] // address -> until; nil or empty: none
}

// NewBlocklist is an empty blocklist; rdb may be nil.
func NewBlocklist(rdb redis.UniversalClient, prefix string, now func() time.Time, log *zap.Logger) *Blocklist {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Blocklist{rdb: rdb, prefix: prefix, now: now, log: log}
}

func (b *Blocklist) keyPrefix() string { return b.prefix + "sec:block:" }
func (b *Blocklist) channel() string   { return b.prefix + "sec:blocks" }

// Blocked reports whether ip is blocked now, and until when.
func (b *Blocklist) Blocked(ip netip.Addr) (time.Time, bool) {
	m := b.m.Load()
	if m == nil || len(*m) == 0 {
		return time.Time{}, false
	}
	until, ok := (*m)[ip.Unmap()]
	if !ok || !b.now().Before(until) {
		return time.Time{}, false
	}
	return until, true
}

// Empty reports whether no address was blocked (or every block was
// pruned): the check a request makes before anything else.
func (b *Blocklist) Empty() bool {
	m := b.m.Load()
	return m == nil || len(*m) == 0
}

// BlockedString is Blocked of an address in text form ("" or not an
// address: not blocked).
func (b *Blocklist) BlockedString(ip string) (time.Time, bool) {
	if m := b.m.Load(); m == nil || len(*m) == 0 || ip == "" {
		return time.Time{}, false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return time.Time{}, false
	}
	return b.Blocked(a)
}

// ErrNotBlockable: loopback and unspecified addresses are never blocked (an
// edge behind a proxy without trusted_proxies sees every client as the
// proxy; blocking it would block everyone).
var ErrNotBlockable = errors.New("secmon: loopback and unspecified addresses are never blocked")

// Block blocks ip for d at every instance (through Redis when configured).
func (b *Blocklist) Block(ctx context.Context, ip netip.Addr, d time.Duration) (time.Time, error) {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() {
		return time.Time{}, ErrNotBlockable
	}
	until := b.now().Add(d)
	b.set(ip, until)
	if b.rdb == nil {
		return until, nil
	}
	ms := strconv.FormatInt(until.UnixMilli(), 10)
	pipe := b.rdb.Pipeline()
	pipe.Set(ctx, b.keyPrefix()+ip.String(), ms, d)
	pipe.Publish(ctx, b.channel(), ip.String()+" "+ms)
	if _, err := pipe.Exec(ctx); err != nil {
		return until, err
	}
	return until, nil
}

// set records a block, keeping the later end of two.
func (b *Blocklist) set(ip netip.Addr, until time.Time) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var old map[netip.Addr]time.Time
	if p := b.m.Load(); p != nil {
		old = *p
	}
	if u, ok := old[ip]; ok && u.After(until) {
		return
	}
	next := make(map[netip.Addr]time.Time, len(old)+1)
	for a, u := range old { // what ended is left out
		if now.Before(u) {
			next[a] = u
		}
	}
	next[ip] = until
	b.m.Store(&next)
}

// Len is the number of addresses blocked now.
func (b *Blocklist) Len() int {
	now := b.now()
	p := b.m.Load()
	if p == nil {
		return 0
	}
	n := 0
	for _, u := range *p {
		if now.Before(u) {
			n++
		}
	}
	return n
}

// Run listens for other instances' blocks until ctx ends (a no-op without
// Redis), reloading every block key at each (re)subscription.
func (b *Blocklist) Run(ctx context.Context) {
	if b.rdb == nil {
		return
	}
	for ctx.Err() == nil {
		if err := b.listen(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("security blocklist: listener stopped; reconnecting", zap.Error(err))
			rediscluster.Relearn(b.rdb) // its node may have failed over
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (b *Blocklist) listen(ctx context.Context) error {
	ps := b.rdb.Subscribe(ctx, b.channel())
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := b.resync(rctx)
	cancel()
	if err != nil {
		return err
	}
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return errors.New("subscription closed")
			}
			b.apply(msg.Payload)
		}
	}
}

// apply takes "<ip> <until unix ms>".
func (b *Blocklist) apply(payload string) {
	ipText, msText, ok := strings.Cut(payload, " ")
	if !ok {
		return
	}
	ip, err := netip.ParseAddr(ipText)
	ms, err2 := strconv.ParseInt(msText, 10, 64)
	if err != nil || err2 != nil {
		return
	}
	b.set(ip.Unmap(), time.UnixMilli(ms))
}

// resync loads every block key.
func (b *Blocklist) resync(ctx context.Context) error {
	keys, err := rediscluster.Keys(ctx, b.rdb, b.keyPrefix()+"*", 256) // every primary of a cluster
	if err != nil {
		return err
	}
	for _, key := range keys {
		v, err := b.rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return err
		}
		b.apply(strings.TrimPrefix(key, b.keyPrefix()) + " " + v)
	}
	return nil
}

// BlockedNear reports whether another address of ip's network (/24 for
// IPv4, /48 for IPv6) is blocked now: a risk signal for logins from it
// (the auth service's step-up), not a block.
func (b *Blocklist) BlockedNear(ip string) bool {
	m := b.m.Load()
	if m == nil || len(*m) == 0 || ip == "" {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return false
	}
	now := b.now()
	for blocked, until := range *m {
		if blocked != a && now.Before(until) && p.Contains(blocked) {
			return true
		}
	}
	return false
}
