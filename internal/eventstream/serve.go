package eventstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/events"
)

// Request is one verified stream request.
type Request struct {
	Company  string   // the caller's company (never empty)
	Scopes   []string // the caller's scope, split
	Patterns []string // type patterns asked for; nil: every type the scope reads
	// Resume: replay the events after After first (Last-Event-ID).
	Resume bool
	After  uint64
	// Revocable is the credential's revocation id (contract.Credential).
	Revocable string
	// Expiry of the credential (zero: none).
	Expiry time.Time
}

// Sink writes to one client.
type Sink interface {
	// Send writes one event.
	Send(ctx context.Context, it *Item) error
	// Heartbeat keeps a quiet connection alive (and finds dead ones).
	Heartbeat(ctx context.Context) error
	// End writes the final error for r and closes the stream.
	End(ctx context.Context, r Reason) error
}

// ErrNotReady: the hub does not read the stream yet.
var ErrNotReady = errors.New("eventstream: the event stream is not ready")

// replayBatch is how many events a replay fetches at once.
const replayBatch = 256

// Stream is a connection registered with the hub, not yet serving: events
// published from its registration on are kept for it. Register before the
// client is told the stream is open (the response head), so that nothing
// published after the client saw it is missed.
type Stream struct {
	h   *Hub
	eng *events.Engine
	req Request
	sub *Sub
}

// Open registers req's connection.
func (h *Hub) Open(req Request) (*Stream, error) {
	eng := h.Engine()
	if eng == nil {
		return nil, ErrNotReady
	}
	sub, err := h.Subscribe(req.Company, req.Patterns, req.Scopes, req.Revocable)
	if err != nil {
		return nil, err
	}
	return &Stream{h: h, eng: eng, req: req, sub: sub}, nil
}

// Close unregisters the connection (Serve does it when it returns).
func (st *Stream) Close() { st.h.Unsubscribe(st.sub) }

// Serve opens req's stream and serves it (see Stream.Serve).
func (h *Hub) Serve(ctx context.Context, req Request, sink Sink) (Reason, error) {
	st, err := h.Open(req)
	if err != nil {
		return ReasonNone, err
	}
	return st.Serve(ctx, sink)
}

// Serve streams the connection's events to sink until ctx ends (the client
// went away) or the connection is ended (the reason is returned, after
// sink.End); it unregisters the connection when it returns.
func (st *Stream) Serve(ctx context.Context, sink Sink) (Reason, error) {
	h, eng, req, sub := st.h, st.eng, st.req, st.sub
	defer h.Unsubscribe(sub)

	var expired <-chan time.Time
	if !req.Expiry.IsZero() {
		t := time.NewTimer(time.Until(req.Expiry))
		defer t.Stop()
		expired = t.C
	}
	end := func(r Reason) (Reason, error) {
		wctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
		defer cancel()
		return r, sink.End(wctx, r)
	}
	send := func(it *Item) error {
		wctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
		defer cancel()
		return sink.Send(wctx, it)
	}

	// through is the last sequence the client has been given (or that a
	// replay looked at): the hub's events up to it are duplicates.
	var through uint64
	if req.Resume {
		sub.replaying.Store(true)
		through = req.After
		for {
			var err error
			if through, err = h.replay(ctx, eng, req, sub, through, send); err != nil {
				return ReasonNone, err
			}
			if r := sub.Reason(); r != ReasonNone {
				return end(r)
			}
			if sub.dropped.Swap(false) {
				continue // the live buffer overflowed meanwhile: the stream has it all
			}
			sub.replaying.Store(false)
			if !sub.dropped.Swap(false) { // a drop racing the switch
				break
			}
			sub.replaying.Store(true)
		}
	}

	hb := time.NewTicker(h.cfg.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return ReasonNone, ctx.Err()
		case <-sub.done:
			return end(sub.reason)
		case <-expired:
			return end(ReasonExpired)
		case <-hb.C:
			wctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
			err := sink.Heartbeat(wctx)
			cancel()
			if err != nil {
				return ReasonNone, err
			}
		case it := <-sub.ch:
			if it.Seq <= through {
				continue
			}
			if err := send(it); err != nil {
				return ReasonNone, err
			}
			through = it.Seq
		}
	}
}

// replay sends the events of req's company after after that sub wants, up
// to the stream's end, with a short-lived consumer of the company's
// subjects; it returns the last sequence it looked at. It stops early (and
// returns no error) when sub is ended.
func (h *Hub) replay(ctx context.Context, eng *events.Engine, req Request, sub *Sub, after uint64, send func(*Item) error) (uint64, error) {
	names := eng.Names()
	js := eng.JetStream()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.Stream(sctx, names.Stream)
	if err != nil {
		return after, fmt.Errorf("eventstream: replay: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	switch {
	case after > last:
		// An id from the future (another stream, or one that was reset):
		// nothing to replay; the client gets what the hub dispatches after
		// the connection registered — even an event published between the
		// registration and this look at the stream, which "last" counts.
		return sub.since, nil
	case after == last:
		return last, nil // nothing to replay
	}
	filter := names.CompanyFilter(req.Company, "*")
	if len(req.Patterns) == 1 {
		filter = names.CompanyFilter(req.Company, req.Patterns[0])
	}
	cons, err := stream.CreateConsumer(sctx, jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		FilterSubject:     filter,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		Description:       "erpgate event stream resume",
	})
	if err != nil {
		return after, fmt.Errorf("eventstream: replay: %w", err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = stream.DeleteConsumer(dctx, name)
		cancel()
	}()
	prefix := names.Prefix + ".ev."
	through := after
	if cons.CachedInfo().NumPending == 0 {
		return last, nil // nothing of this company after it
	}
	for {
		if ctx.Err() != nil {
			return through, ctx.Err()
		}
		if sub.Reason() != ReasonNone {
			return through, nil
		}
		batch, err := cons.FetchNoWait(replayBatch)
		if err != nil {
			return through, fmt.Errorf("eventstream: replay: %w", err)
		}
		n := 0
		pending := uint64(1)
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = meta.NumPending
			_, typ, ok := splitSubject(m.Subject(), prefix)
			if ok {
				it := NewItem(meta.Sequence.Stream, typ, m.Data())
				if sub.wants(it) {
					if err := send(it); err != nil {
						return through, err
					}
				}
			}
			through = meta.Sequence.Stream
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return through, fmt.Errorf("eventstream: replay: %w", err)
		}
		if n == 0 || pending == 0 {
			return through, nil
		}
	}
}
