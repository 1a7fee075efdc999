// Package revocation keeps an edge instance's view of revoked sessions and
// API keys current. Through Redis: it subscribes to `<prefix>revocations`
// and, every time the subscription is (re)established, resyncs from the marks
// `<prefix>revoked:sid:<sid>` — retrying with backoff until a resync
// succeeds — so a message missed while disconnected is not lost. The set
// also knows how current it is (Confirmed): a verifier stops trusting a
// view that was not confirmed recently (see Set.CurrentAt). Without Redis it
// is fed in process by the auth service, and always current.
//
// Messages are a bare session id, `apikey:<key id>` for a revoked API key,
// or `apikey-rotated:<key id>` for a rotated one.
//
// A Set owns one instance's view; the erp app keeps one per Lasting, across
// reloads. Of ours it imports only contract, and it must not import Caddy
// or anything under caddymodules/.
package revocation

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/rediscluster"
)

// Prefixes of API key messages: a revoked key, and a rotated one.
const (
	APIKeyPrefix        = "apikey:"
	APIKeyRotatedPrefix = "apikey-rotated:"
)

// Set holds revoked ids until the last credential that could carry them expired.
type Set struct {
	mu   sync.RWMutex
	m    map[string]time.Time
	now  func() time.Time
	subs []func(id string)

	// confirmed (unix nanoseconds): every revocation published before it is
	// in the set. math.MaxInt64 for a set fed in process only (nothing can
	// be missed), 0 before a Listener's first resync.
	confirmed atomic.Int64
}

// NewSet returns an empty set using now as its clock. It is current until a
// Listener feeds it (see CurrentAt).
func NewSet(now func() time.Time) *Set {
	s := &Set{m: map[string]time.Time{}, now: now}
	s.confirmed.Store(math.MaxInt64)
	return s
}

// CurrentAt reports whether, at now, the set holds every revocation
// published up to maxAge ago: false while a Listener is disconnected from
// Redis (or has not resynced since it reconnected) for longer than maxAge.
// It costs one atomic load: verifiers call it on every request.
func (s *Set) CurrentAt(now time.Time, maxAge time.Duration) bool {
	return now.UnixNano()-s.confirmed.Load() <= int64(maxAge)
}

// Unconfirm makes the set not current until the next Confirm (a feeder
// that can miss revocations, before it has caught up).
func (s *Set) Unconfirm() { s.confirmed.Store(0) }

// Confirm records that every revocation published before t is in the set.
func (s *Set) Confirm(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.confirmed.Load()
		if old >= n || s.confirmed.CompareAndSwap(old, n) {
			return
		}
	}
}

// Add marks id revoked until until and tells subscribers.
func (s *Set) Add(id string, until time.Time) {
	if id == "" {
		return
	}
	s.mu.Lock()
	if old, ok := s.m[id]; !ok || until.After(old) {
		s.m[id] = until
	}
	if len(s.m) > 1024 && len(s.m)%1024 == 0 {
		now := s.now()
		for k, u := range s.m {
			if !now.Before(u) {
				delete(s.m, k)
			}
		}
	}
	subs := s.subs
	s.mu.Unlock()
	for _, fn := range subs {
		fn(id)
	}
}

// Has reports whether id is revoked.
func (s *Set) Has(id string) bool {
	if s == nil || id == "" {
		return false
	}
	s.mu.RLock()
	until, ok := s.m[id]
	s.mu.RUnlock()
	return ok && s.now().Before(until)
}

// OnAdd registers fn to be called with every id added (e.g. to drop cache entries).
func (s *Set) OnAdd(fn func(id string)) {
	s.mu.Lock()
	s.subs = append(append([]func(string){}, s.subs...), fn)
	s.mu.Unlock()
}

// Defaults of Listener.
const (
	DefaultPingInterval = time.Second
	resyncBackoffMin    = 100 * time.Millisecond
	resyncBackoffMax    = 2 * time.Second
	reconnectDelay      = 200 * time.Millisecond
)

// Listener feeds a Set from Redis and keeps it confirmed: after every
// (re)subscription it resyncs from the marks, retrying with backoff
// (100 ms doubling to 2 s) until a resync succeeds; then every answered PING
// on the subscription's connection (every PingInterval) confirms the set up
// to the time the PING was sent (every message published before it came
// first). A subscription whose PING goes unanswered for two intervals is
// dropped and made again, so a silent connection does not pass for a
// quiet one.
type Listener struct {
	Redis  redis.UniversalClient
	Prefix string
	Set    *Set
	// TTL is how long a message's mark is kept: the lifetime of an access token plus leeway.
	TTL    time.Duration
	Logger *zap.Logger
	// OnSwitch is told when the subscription is lost (false) or (re)established (true).
	OnSwitch func(up bool)
	// PingInterval. Default: DefaultPingInterval.
	PingInterval time.Duration

	mu     sync.Mutex
	gen    uint64 // the current subscription; a resync of an older one confirms nothing
	synced bool   // the current subscription's resync succeeded
}

// Run subscribes and keeps the set current until ctx ends. It returns after
// the first subscription attempt finished (successfully or not); the
// subscription is retried in the background. The set is not current until
// the first resync succeeded.
func (l *Listener) Run(ctx context.Context) {
	l.Set.Unconfirm()
	if l.PingInterval <= 0 {
		l.PingInterval = DefaultPingInterval
	}
	ready := make(chan struct{})
	go l.loop(ctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
}

func (l *Listener) loop(ctx context.Context, ready chan struct{}) {
	channel := l.Prefix + contract.RedisChannelRevocation
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	up := false
	switched := func(now bool) {
		if now == up {
			return
		}
		up = now
		if up {
			l.Logger.Info("revocation subscription up", zap.String("channel", channel))
		}
		if l.OnSwitch != nil {
			l.OnSwitch(up)
		}
	}
	for ctx.Err() == nil {
		ps := l.Redis.Subscribe(ctx, channel)
		err := l.serve(ctx, ps, once, func() { switched(true) })
		_ = ps.Close()
		l.lost()
		rediscluster.Relearn(l.Redis) // its node may have failed over: subscribe where the channel's slot is now
		if ctx.Err() != nil {
			return
		}
		if up {
			l.Logger.Warn("revocation subscription lost; will resync on reconnect", zap.Error(err))
		}
		switched(false)
		once()
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay):
		}
	}
}

// serve reads one subscription until it fails (the error says why).
func (l *Listener) serve(ctx context.Context, ps *redis.PubSub, ready, subscribed func()) error {
	stopResync := func() {}
	defer func() { stopResync() }()
	var pingSent time.Time
	awaiting := false // a PING is unanswered
	isUp := false
	for {
		if isUp && !awaiting && time.Since(pingSent) >= l.PingInterval {
			pingSent = l.Set.now()
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			awaiting = true
		}
		msg, err := ps.ReceiveTimeout(ctx, l.PingInterval)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if awaiting && time.Since(pingSent) > 2*l.PingInterval {
					return errors.New("the subscription's connection does not answer PING")
				}
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			stopResync()
			rctx, cancel := context.WithCancel(ctx)
			stopResync = cancel
			gen := l.subscribed()
			go l.resyncUntilDone(rctx, gen)
			isUp, awaiting, pingSent = true, false, time.Time{}
			subscribed()
			ready()
		case *redis.Pong:
			awaiting = false
			l.mu.Lock()
			if l.synced {
				l.Set.Confirm(pingSent)
			}
			l.mu.Unlock()
		case *redis.Message:
			l.Set.Add(m.Payload, l.Set.now().Add(l.TTL))
		}
	}
}

// subscribed starts a new subscription's generation.
func (l *Listener) subscribed() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.synced = false
	return l.gen
}

// lost ends the current subscription: nothing confirms the set until the
// next one has resynced.
func (l *Listener) lost() {
	l.mu.Lock()
	l.gen++
	l.synced = false
	l.mu.Unlock()
}

// resyncUntilDone resyncs, retrying with backoff, until it succeeds or ctx
// ends (the subscription was lost: the next one resyncs again).
func (l *Listener) resyncUntilDone(ctx context.Context, gen uint64) {
	backoff := resyncBackoffMin
	for attempt := 1; ; attempt++ {
		start := l.Set.now()
		err := l.resync(ctx)
		if err == nil {
			l.mu.Lock()
			if l.gen == gen {
				l.synced = true
				l.Set.Confirm(start)
			}
			l.mu.Unlock()
			if attempt > 1 {
				l.Logger.Info("revocation resync succeeded after retrying", zap.Int("attempts", attempt))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 {
			l.Logger.Warn("revocation resync failed; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, resyncBackoffMax)
	}
}

// resync reads every revocation mark, so that messages published while the
// subscription was down are not lost.
func (l *Listener) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	markPrefix := l.Prefix + contract.RedisKeyRevokedSession
	keys, err := rediscluster.Keys(ctx, l.Redis, markPrefix+"*", 1000) // every primary of a cluster
	if err != nil {
		return err
	}
	now := l.Set.now()
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		cmds := make([]*redis.DurationCmd, len(batch))
		_, err := l.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.PTTL(ctx, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range batch {
			ttl := cmds[i].Val()
			if ttl <= 0 {
				ttl = l.TTL
			}
			l.Set.Add(strings.TrimPrefix(k, markPrefix), now.Add(ttl))
		}
	}
	return nil
}
