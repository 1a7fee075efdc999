// Package eventstream is the core of the edge's real-time event streams
// (`GET /api/v1/events/stream`, Server-Sent Events, and
// `GET /api/v1/events/ws`, WebSocket): one Hub per process reads the events
// stream once and fans every event out in memory to the connections of its
// company whose patterns and scope admit it.
//
// Why one reader: a JetStream consumer per connection costs the server a
// consumer (and its state) and this process a subscription per client; with
// 10,000 idle clients that is 10,000 consumers for nothing. The hub holds one
// ordered consumer on the whole stream; a connection is a map entry and a
// bounded channel. A resume (`Last-Event-ID`) replays the gap with a
// short-lived consumer of the company's subjects from the sequence after
// it, while the connection is already registered with the hub, and then
// continues with the hub's events, skipping what the replay sent (the stream
// sequence is the event's SSE id): no gap, no duplicate.
//
// A connection ends (with a final error the client can act on) when its
// credential is revoked (Hub.Revoke, fed by the edge's revocation set),
// when it expires, when it falls behind by more than its buffer (it may
// resume), and when the hub closes (the process stops).
//
// Owns: the fan-out, the resume protocol and the SSE and WebSocket framing.
// Must not import Caddy or caddymodules.
package eventstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
)

// Item is one event as the hub hands it to connections: read only, shared
// by every connection it goes to.
type Item struct {
	Seq   uint64 // the stream sequence: the SSE id
	Type  string // the CloudEvent type
	Scope string // events.ReadScope(Type)
	Data  []byte // the CloudEvent, structured JSON

	sseOnce, wsOnce sync.Once
	sse, ws         []byte
}

// NewItem is the item of the CloudEvent data stored at seq with type typ.
func NewItem(seq uint64, typ string, data []byte) *Item {
	return &Item{Seq: seq, Type: typ, Scope: events.ReadScope(typ), Data: data}
}

// SSE is the item's Server-Sent Events frame (made once).
func (it *Item) SSE() []byte {
	it.sseOnce.Do(func() { it.sse = appendSSE(nil, it.Seq, it.Type, it.Data) })
	return it.sse
}

// WS is the item's WebSocket message `{"id": <seq>, "event": <CloudEvent>}`
// (made once).
func (it *Item) WS() []byte {
	it.wsOnce.Do(func() {
		b := make([]byte, 0, len(it.Data)+32)
		b = append(b, `{"id":`...)
		b = strconv.AppendUint(b, it.Seq, 10)
		b = append(b, `,"event":`...)
		b = append(b, it.Data...)
		it.ws = append(b, '}')
	})
	return it.ws
}

// Reason a connection ends.
type Reason uint8

const (
	ReasonNone     Reason = iota
	ReasonRevoked         // the credential was revoked (logout, demotion, key revoked)
	ReasonExpired         // the credential expired
	ReasonSlow            // the client fell behind by more than its buffer
	ReasonShutdown        // the hub closed (the process stops)
)

// Code is the envelope code a connection ending for r reports.
func (r Reason) Code() string {
	switch r {
	case ReasonRevoked:
		return "TOKEN_REVOKED"
	case ReasonExpired:
		return "TOKEN_EXPIRED"
	case ReasonSlow:
		return "SLOW_CONSUMER"
	case ReasonShutdown:
		return "SERVICE_UNAVAILABLE"
	}
	return ""
}

// Message is the human-readable text of the final error for r.
func (r Reason) Message() string {
	switch r {
	case ReasonRevoked:
		return "the credential was revoked"
	case ReasonExpired:
		return "the credential expired; reconnect with a new one and Last-Event-ID"
	case ReasonSlow:
		return "the client fell behind; reconnect with Last-Event-ID"
	case ReasonShutdown:
		return "the server is shutting down; reconnect with Last-Event-ID"
	}
	return ""
}

// Sub is one connection's registration with the hub.
type Sub struct {
	company   string   // the company's subject token
	patterns  []string // nil: every type
	scopes    []string // the caller's scope, split
	revocable string

	ch        chan *Item
	since     uint64      // the last sequence the hub dispatched before this connection registered
	replaying atomic.Bool // a full buffer now means "replay again", not "too slow"
	dropped   atomic.Bool // an item was dropped while replaying

	endOnce sync.Once
	done    chan struct{}
	reason  Reason
}

// wants reports whether the connection receives it: its scope reads the
// type and one of its patterns (or none) matches it.
func (s *Sub) wants(it *Item) bool {
	if !hasScope(s.scopes, it.Scope) {
		return false
	}
	if s.patterns == nil {
		return true
	}
	for _, p := range s.patterns {
		if events.Match(p, it.Type) {
			return true
		}
	}
	return false
}

func hasScope(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// offer enqueues it without blocking; a full buffer ends the connection
// (or, while it replays, marks it for another replay pass).
func (s *Sub) offer(it *Item) {
	select {
	case s.ch <- it:
		return
	default:
	}
	if s.replaying.Load() {
		s.dropped.Store(true)
		return
	}
	s.end(ReasonSlow)
}

// end ends the connection for r (the first reason wins).
func (s *Sub) end(r Reason) {
	s.endOnce.Do(func() {
		s.reason = r
		close(s.done)
	})
}

// Done is closed when the hub ended the connection; Reason says why.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Reason is why the hub ended the connection (after Done is closed).
func (s *Sub) Reason() Reason {
	select {
	case <-s.done:
		return s.reason
	default:
		return ReasonNone
	}
}

// Config of a Hub.
type Config struct {
	// Buffer is each connection's queue of events not yet written; a
	// connection whose queue is full is ended (ReasonSlow). Default: 256.
	Buffer int
	// Heartbeat is the interval of SSE comments / WebSocket pings on a
	// quiet connection. Default: 15s.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a client. Default: 10s.
	WriteTimeout time.Duration
	// Revoked reports whether a credential's revocation id is revoked now
	// (the revocation set); nil: never.
	Revoked func(id string) bool
	Logger  *zap.Logger
}

// WithDefaults is c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Buffer <= 0 {
		c.Buffer = 256
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Hub fans the events stream out to connections.
type Hub struct {
	cfg Config
	log *zap.Logger

	mu          sync.RWMutex
	byCompany   map[string]map[*Sub]struct{}
	byRevocable map[string]map[*Sub]struct{}
	closed      bool

	engine atomic.Pointer[events.Engine]
	ready  chan struct{}
	once   sync.Once

	delivered atomic.Uint64 // events the hub read
	last      atomic.Uint64 // the sequence of the last event dispatched
	conns     atomic.Int64
}

// NewHub is a hub with no engine yet (see Run).
func NewHub(cfg Config) *Hub {
	cfg = cfg.WithDefaults()
	return &Hub{
		cfg: cfg, log: cfg.Logger,
		byCompany:   map[string]map[*Sub]struct{}{},
		byRevocable: map[string]map[*Sub]struct{}{},
		ready:       make(chan struct{}),
	}
}

// Config is the hub's configuration with defaults applied.
func (h *Hub) Config() Config { return h.cfg }

// Ready reports whether the hub reads the stream.
func (h *Hub) Ready() bool { return h.engine.Load() != nil }

// Stats of a hub.
type Stats struct {
	Connections int64
	Delivered   uint64
}

// Stats are the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{Connections: h.conns.Load(), Delivered: h.delivered.Load()}
}

// ErrClosed: the hub is closed.
var ErrClosed = errors.New("eventstream: the hub is closed")

// Subscribe registers a connection of company (the company id) reading
// patterns (nil: every type) with scopes, revoked under revocable.
func (h *Hub) Subscribe(company string, patterns, scopes []string, revocable string) (*Sub, error) {
	s := &Sub{
		company: events.CompanyToken(company), patterns: patterns, scopes: scopes, revocable: revocable,
		ch: make(chan *Item, h.cfg.Buffer), done: make(chan struct{}),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	s.since = h.last.Load() // Dispatch stores it under the read lock: events after it reach s
	add(h.byCompany, s.company, s)
	if revocable != "" {
		add(h.byRevocable, revocable, s)
	}
	h.mu.Unlock()
	h.conns.Add(1)
	// a revocation announced before the registration is not missed
	if revocable != "" && h.cfg.Revoked != nil && h.cfg.Revoked(revocable) {
		s.end(ReasonRevoked)
	}
	return s, nil
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	removed := remove(h.byCompany, s.company, s)
	if s.revocable != "" {
		remove(h.byRevocable, s.revocable, s)
	}
	h.mu.Unlock()
	if removed {
		h.conns.Add(-1)
	}
}

func add(m map[string]map[*Sub]struct{}, k string, s *Sub) {
	set := m[k]
	if set == nil {
		set = map[*Sub]struct{}{}
		m[k] = set
	}
	set[s] = struct{}{}
}

func remove(m map[string]map[*Sub]struct{}, k string, s *Sub) bool {
	set := m[k]
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(m, k)
	}
	return true
}

// Revoke ends every connection authenticated by the revocation id (a
// session id, `apikey:<id>`): the revocation set calls it for every id it
// learns, from this process and, through Redis, from every instance.
func (h *Hub) Revoke(id string) {
	h.mu.RLock()
	set := h.byRevocable[id]
	subs := make([]*Sub, 0, len(set))
	for s := range set {
		subs = append(subs, s)
	}
	h.mu.RUnlock()
	for _, s := range subs {
		s.end(ReasonRevoked)
	}
}

// Dispatch hands an event of companyToken (its subject token) to every
// connection of that company that wants it.
func (h *Hub) Dispatch(companyToken string, it *Item) {
	h.delivered.Add(1)
	h.mu.RLock()
	h.last.Store(it.Seq)
	for s := range h.byCompany[companyToken] {
		if s.wants(it) {
			s.offer(it)
		}
	}
	h.mu.RUnlock()
}

// Close ends every connection (ReasonShutdown) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	var subs []*Sub
	for _, set := range h.byCompany {
		for s := range set {
			subs = append(subs, s)
		}
	}
	h.mu.Unlock()
	for _, s := range subs {
		s.end(ReasonShutdown)
	}
}

// Run reads the events stream of the engine wait returns, from its current
// end, and dispatches every event until ctx ends. The ordered consumer
// re-creates itself from the last sequence it delivered when NATS comes
// back, so an outage loses no event the stream kept.
func (h *Hub) Run(ctx context.Context, wait func(context.Context) (*events.Engine, error)) {
	var eng *events.Engine
	for {
		var err error
		if eng, err = wait(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
	}
	for ctx.Err() == nil {
		err := h.consume(ctx, eng)
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("event stream reader stopped; restarting", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (h *Hub) consume(ctx context.Context, eng *events.Engine) error {
	names := eng.Names()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	stream, err := eng.Stream(sctx)
	var info *jetstream.StreamInfo
	if err == nil {
		info, err = stream.Info(sctx)
	}
	cancel()
	if err != nil {
		return err
	}
	cons, err := eng.JetStream().OrderedConsumer(ctx, names.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{names.StreamSubjects()},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
		// no NamePrefix: `<prefix>_<n>` would be the same name on every
		// instance reading the stream, and they would take over each
		// other's consumer
	})
	if err != nil {
		return err
	}
	prefix := names.Prefix + ".ev."
	failed := make(chan error, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		company, typ, ok := splitSubject(m.Subject(), prefix)
		if !ok {
			return
		}
		h.Dispatch(company, NewItem(meta.Sequence.Stream, typ, m.Data()))
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		h.log.Debug("event stream reader", zap.Error(err))
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrStreamNotFound) {
			select {
			case failed <- err:
			default:
			}
		}
	}))
	if err != nil {
		return err
	}
	h.engine.Store(eng)
	h.once.Do(func() { close(h.ready) })
	defer cc.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-failed:
		return err
	}
}

// splitSubject cuts `<prefix><company>.<type>` into the company token and
// the type.
func splitSubject(subject, prefix string) (company, typ string, ok bool) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return "", "", false
	}
	company, typ, ok = strings.Cut(rest, ".")
	return company, typ, ok && company != "" && typ != ""
}

// Engine is the engine the hub reads, or nil before Run found one.
func (h *Hub) Engine() *events.Engine { return h.engine.Load() }

// WaitReady waits until the hub reads the stream or ctx ends.
func (h *Hub) WaitReady(ctx context.Context) bool {
	select {
	case <-h.ready:
		return true
	case <-ctx.Done():
		return false
	}
}
