package authsvc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// How a revocation reaches the edges.
//
// A revocation is recorded by the store, with the change itself, in its
// outbox (store.RevocationOutbox: a row written in the same transaction).
// Only then does the client get its answer: a revocation that was answered
// with success is never lost, whatever Redis does. From there:
//
//   - the edges of this process hear it at once (in process, SubscribeRevocations);
//   - the relay (one goroutine per service) publishes the outbox to Redis —
//     a mark `<prefix>revoked:sid:<sid>` kept for an access token's lifetime
//     plus a minute, and a message on `<prefix>revocations` — and deletes the
//     rows it published. It is woken by every revocation, retries with
//     backoff (relayBackoffMin doubling to relayBackoffMax) while Redis or
//     the store fails, and otherwise looks for rows every relayPoll (rows
//     another instance recorded but could not publish before it stopped).
//     Every instance's relay reads the same outbox; publishing a row twice
//     is harmless.
//   - every edge subscribes to the channel and, whenever its subscription
//     is (re)established, re-reads the marks (internal/revocation.Listener)
//     until that succeeds.
//
// Without Redis the relay hands the outbox to this process's edges.
const (
	relayPoll       = 5 * time.Second
	relayBackoffMin = 100 * time.Millisecond
	relayBackoffMax = 2 * time.Second
	relayBatch      = 500
	// revocationRetryAfter is the Retry-After of a revocation that could
	// not be recorded (the store is unreachable).
	revocationRetryAfter = 2 * time.Second
)

// revocationPublisher publishes revocations to every edge instance.
type revocationPublisher interface {
	// Publish sets each message's mark for ttl and announces it on the channel.
	Publish(ctx context.Context, msgs []string, ttl time.Duration) error
}

type redisRevocations struct {
	rdb    redis.UniversalClient
	prefix string
}

func (r *redisRevocations) Publish(ctx context.Context, msgs []string, ttl time.Duration) error {
	if len(msgs) == 0 {
		return nil
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.Set(ctx, r.prefix+contract.RedisKeyRevokedSession+m, 1, ttl)
		}
		for _, m := range msgs {
			p.Publish(ctx, r.prefix+contract.RedisChannelRevocation, m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	return nil
}

// localRevocations tells this process's subscribers (the edge's revocation
// set) about revocations the moment they are recorded.
type localRevocations struct {
	mu   sync.Mutex
	subs map[int]func(string)
	next int
}

func (l *localRevocations) notify(msgs []string) {
	if len(msgs) == 0 {
		return
	}
	l.mu.Lock()
	subs := make([]func(string), 0, len(l.subs))
	for _, fn := range l.subs {
		subs = append(subs, fn)
	}
	l.mu.Unlock()
	for _, fn := range subs {
		for _, m := range msgs {
			fn(m)
		}
	}
}

func (l *localRevocations) subscribe(ctx context.Context, fn func(string)) {
	l.mu.Lock()
	if l.subs == nil {
		l.subs = map[int]func(string){}
	}
	id := l.next
	l.next++
	l.subs[id] = fn
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		delete(l.subs, id)
		l.mu.Unlock()
	})
}

// message is a revocation as the channel carries it: a bare session id,
// or an API key's id behind its prefix.
func message(r store.Revocation) string {
	switch r.Kind {
	case store.RevokedAPIKey:
		return APIKeyRevokedPrefix + r.SubjectID
	case store.RotatedAPIKey:
		return APIKeyRotatedPrefix + r.SubjectID
	default:
		return r.SubjectID
	}
}

// markTTL is how long a revocation mark is kept: it must outlive every
// access token of the session (and the edge's cached API key answers).
func (s *Service) markTTL() time.Duration { return s.cfg.AccessTTL + time.Minute }

// recorded is called once the store recorded revocations (and their outbox
// rows): this process's edges hear them now, the relay delivers them to
// the others. It cannot fail: delivery is the relay's, until it succeeds.
func (s *Service) recorded(rs []store.Revocation) {
	if len(rs) == 0 {
		return
	}
	msgs := make([]string, len(rs))
	for i, r := range rs {
		msgs[i] = message(r)
	}
	s.local.notify(msgs)
	s.kickRelay()
}

// sessionsRevoked is recorded for sessions the store revoked.
func (s *Service) sessionsRevoked(sids []string) {
	rs := make([]store.Revocation, len(sids))
	for i, sid := range sids {
		rs[i] = store.Revocation{Kind: store.RevokedSession, SubjectID: sid}
	}
	s.recorded(rs)
}

// redrive records revocations to deliver again (the store revoked them
// earlier: a retried logout, a disabled company's keys) and delivers them.
func (s *Service) redrive(ctx context.Context, rs []store.Revocation) error {
	now := s.clock.Now()
	for i := range rs {
		rs[i].At = now
	}
	if err := s.store.EnqueueRevocations(ctx, rs); err != nil {
		return err
	}
	s.recorded(rs)
	return nil
}

func (s *Service) kickRelay() {
	select {
	case s.relayKick <- struct{}{}:
	default:
	}
}

// errNotRecorded answers a revocation the store could not record: nothing
// changed, and the same request later will do it.
func (s *Service) errNotRecorded(c *call, err error) error {
	s.logger.Error("revocation not recorded: the store failed", zap.String("path", c.r.URL.Path),
		zap.String("request_id", c.meta.RequestID), zap.Error(err))
	e := contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable,
		"the revocation could not be recorded; nothing changed, try again shortly")
	secs := int64(revocationRetryAfter / time.Second)
	e.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	e.Context = map[string]any{"retry_after": secs}
	return e
}

// relay delivers the outbox until the service ends (see the top of this file).
func (s *Service) relay() {
	defer s.wg.Done()
	t := time.NewTimer(0) // at start: what a previous process left
	defer t.Stop()
	var backoff time.Duration
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.relayKick:
			if backoff > 0 {
				continue // failing: the timer retries; a kick adds no attempts
			}
		}
		more, n, err := s.deliverPending()
		switch {
		case err != nil && s.ctx.Err() != nil:
			return
		case err != nil:
			if backoff == 0 {
				s.logger.Warn("revocations recorded but not yet delivered to the edges; retrying", zap.Error(err))
				backoff = relayBackoffMin
			} else {
				backoff = min(2*backoff, relayBackoffMax)
			}
			t.Reset(backoff)
		default:
			if backoff > 0 {
				s.logger.Info("revocations delivered after retrying", zap.Int("delivered", n))
				backoff = 0
			}
			if more {
				t.Reset(0)
			} else {
				t.Reset(relayPoll)
			}
		}
	}
}

// deliverPending publishes one batch of the outbox and deletes it. more:
// the batch was full.
func (s *Service) deliverPending() (more bool, n int, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	rs, err := s.store.PendingRevocations(ctx, relayBatch)
	if err != nil || len(rs) == 0 {
		return false, 0, err
	}
	now := s.clock.Now()
	msgs := make([]string, 0, len(rs))
	seqs := make([]int64, len(rs))
	for i, r := range rs {
		seqs[i] = r.Seq
		if now.Sub(r.At) < s.markTTL()+time.Minute { // else no credential it stops can be alive
			msgs = append(msgs, message(r))
		}
	}
	if s.pub != nil {
		err = s.pub.Publish(ctx, msgs, s.markTTL())
	} else {
		s.local.notify(msgs)
	}
	if err != nil {
		return false, 0, err
	}
	if err := s.store.DeleteRevocations(ctx, seqs); err != nil {
		return false, 0, err
	}
	return len(rs) == relayBatch, len(msgs), nil
}

// IsSessionRevoked reports whether the user's session is revoked (or gone),
// from the store: the answer an edge asks for when its own view of
// revocations is not current (Redis unreachable). An error means the store
// could not say.
func (s *Service) IsSessionRevoked(ctx context.Context, userID, sid string) (bool, error) {
	if err := s.Ready(ctx); err != nil {
		return false, err
	}
	sess, err := s.store.GetSession(ctx, userID, sid)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !sess.RevokedAt.IsZero(), nil
}

// SubscribeRevocations calls fn with every revocation this service records
// from now on — a session id (`sid` claim) revoked by logout, logout-all,
// session revocation, refresh reuse, password change, a role change or
// disabling, or `apikey:<id>` / `apikey-rotated:<id>` — the moment it is
// recorded, Redis or not, until ctx ends. Revocations recorded by other
// instances reach an edge through Redis (internal/revocation.Listener).
func (s *Service) SubscribeRevocations(ctx context.Context, fn func(msg string)) error {
	s.local.subscribe(ctx, fn)
	return nil
}
