// Package revocation keeps an edge instance's view of revoked sessions and
// API keys current. Through Redis: it subscribes to `<prefix>revocations`
// and, every time the subscription is (re)established, resyncs from the marks
// `<prefix>revoked:sid:<sid>`, so a message missed while disconnected is not
// lost. Without Redis it is fed in process by the auth service.
//
// Messages are a bare session id, `apikey:<key id>` for a revoked API key,
// or `apikey-rotated:<key id>` for a rotated one.
package revocation

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/config"
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
}

// NewSet returns an empty set using now as its clock.
func NewSet(now func() time.Time) *Set {
	return &Set{m: map[string]time.Time{}, now: now}
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

// Listener feeds a Set from Redis.
type Listener struct {
	Redis  redis.UniversalClient
	Prefix string
	Set    *Set
	// TTL is how long a message's mark is kept: the lifetime of an access token plus leeway.
	TTL    time.Duration
	Logger *zap.Logger
	// OnSwitch is told when the subscription is lost (false) or (re)established (true).
	OnSwitch func(up bool)
}

// Run subscribes and keeps the set current until ctx ends. It returns after
// the first subscription attempt finished (successfully or not); the
// subscription is retried in the background.
func (l *Listener) Run(ctx context.Context) {
	ready := make(chan struct{})
	go l.loop(ctx, ready)
	select {
	case <-ready:
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
}

func (l *Listener) loop(ctx context.Context, ready chan struct{}) {
	channel := l.Prefix + config.RedisChannelRevocation
	ps := l.Redis.Subscribe(ctx, channel)
	defer ps.Close()
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	up := false
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if up {
				up = false
				l.Logger.Warn("revocation subscription lost; will resync on reconnect", zap.Error(err))
				if l.OnSwitch != nil {
					l.OnSwitch(false)
				}
			}
			once()
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if err := l.resync(ctx); err != nil {
					l.Logger.Warn("revocation resync failed", zap.Error(err))
				}
				if !up {
					up = true
					l.Logger.Info("revocation subscription up", zap.String("channel", channel))
					if l.OnSwitch != nil {
						l.OnSwitch(true)
					}
				}
				once()
			}
		case *redis.Message:
			l.Set.Add(m.Payload, l.Set.now().Add(l.TTL))
		}
	}
}

// resync reads every revocation mark, so that messages published while the
// subscription was down are not lost.
func (l *Listener) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	markPrefix := l.Prefix + config.RedisKeyRevokedSession
	iter := l.Redis.Scan(ctx, 0, markPrefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
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
