package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Config says where the engine's NATS is and how its stream is kept.
type Config struct {
	// URL of an external NATS (comma-separated for a cluster's seeds).
	// Empty: an embedded nats-server in this process, with no listener.
	URL string
	// StoreDir is the embedded server's JetStream file store (required
	// without URL). One process at a time may use it.
	StoreDir string
	// Names of the stream and subjects (NamesFor of the key prefix).
	Names Names
	// Replicas of the stream on a cluster (1 to 5). Default: 1.
	Replicas int
	// MaxAge is how long events are kept in the stream (SSE resume and
	// webhook retries reach back this far). Default: 7 days.
	MaxAge time.Duration
	// Buffer bounds the events Publish holds while NATS doesn't answer.
	// Default: 65536.
	Buffer int
	Logger *zap.Logger
}

// Engine publishes and reads a deployment's events on NATS JetStream.
type Engine struct {
	cfg   Config
	ns    *server.Server // nil: external
	lock  *os.File       // the embedded store's lock
	nc    *nats.Conn
	js    jetstream.JetStream
	log   *zap.Logger
	queue chan *Event
	done  chan struct{}
	stop  context.CancelFunc

	published atomic.Uint64
	dropped   atomic.Uint64
	// unsettled counts the events Publish accepted that are neither
	// acknowledged nor dropped yet: queued, in flight or waiting to be
	// retried. Flush waits for it to reach zero.
	unsettled atomic.Int64
	failed    atomic.Uint64
}

// ErrStoreInUse: another process holds the embedded store.
var ErrStoreInUse = errors.New("events: the embedded NATS store is in use by another process (give each process its own data directory or key prefix, or set ERP_NATS_URL)")

// Open starts (embedded) or connects to (external) NATS and makes sure the
// stream exists. ctx bounds the start.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Names.Stream == "" {
		cfg.Names = NamesFor("")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 7 * 24 * time.Hour
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 65536
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, queue: make(chan *Event, cfg.Buffer), done: make(chan struct{})}
	opts := []nats.Option{
		nats.Name("erpgate"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(8 << 20),
		nats.RetryOnFailedConnect(true),
	}
	var err error
	if cfg.URL == "" {
		if err := e.startEmbedded(); err != nil {
			return nil, err
		}
		opts = append(opts, nats.InProcessServer(e.ns))
	}
	if e.nc, err = nats.Connect(cfg.URL, opts...); err != nil {
		e.closeServer()
		return nil, fmt.Errorf("events: connect to NATS: %w", err)
	}
	// An async publish whose acknowledgement never comes (the stream's
	// leader died and the connection to another node stayed up: no
	// reconnect fails it) times out and is retried; without a timeout it
	// would hold the publisher, in-order acknowledgements, forever.
	if e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout)); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.ensureStream(ctx); err != nil {
		e.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go e.run(runCtx)
	return e, nil
}

func (e *Engine) startEmbedded() error {
	if e.cfg.StoreDir == "" {
		return errors.New("events: the embedded NATS needs a store directory")
	}
	if err := os.MkdirAll(e.cfg.StoreDir, 0o700); err != nil {
		return fmt.Errorf("events: store directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(e.cfg.StoreDir, "erpgate.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("events: store lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return ErrStoreInUse
	}
	e.lock = f
	ns, err := server.NewServer(&server.Options{
		ServerName: "erpgate-embedded",
		DontListen: true,
		JetStream:  true,
		StoreDir:   e.cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		e.closeServer()
		return fmt.Errorf("events: embedded NATS: %w", err)
	}
	e.ns = ns
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		e.closeServer()
		return errors.New("events: the embedded NATS did not start within 10s")
	}
	return nil
}

func (e *Engine) ensureStream(ctx context.Context) error {
	_, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        e.cfg.Names.Stream,
		Description: "erpgate events (CloudEvents 1.0, structured JSON)",
		Subjects:    []string{e.cfg.Names.StreamSubjects()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      e.cfg.MaxAge,
		Replicas:    e.cfg.Replicas,
		Duplicates:  2 * time.Minute, // a republished id within this window is stored once
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("events: stream %s: %w", e.cfg.Names.Stream, err)
	}
	return nil
}

// publishAckTimeout bounds the wait for one asynchronous publish's
// acknowledgement; a publish past it is sent again (same event id: stored
// once). A stream leader election on a cluster takes a few seconds.
const publishAckTimeout = 5 * time.Second

// Names are the engine's stream and subject names.
func (e *Engine) Names() Names { return e.cfg.Names }

// Conn is the engine's NATS connection.
func (e *Engine) Conn() *nats.Conn { return e.nc }

// JetStream is the engine's JetStream context.
func (e *Engine) JetStream() jetstream.JetStream { return e.js }

// Stream is the events stream.
func (e *Engine) Stream(ctx context.Context) (jetstream.Stream, error) {
	return e.js.Stream(ctx, e.cfg.Names.Stream)
}

// Embedded reports whether the engine runs its own nats-server.
func (e *Engine) Embedded() bool { return e.ns != nil }

// Ready reports whether the connection to NATS is up.
func (e *Engine) Ready() bool { return e.nc.IsConnected() }

// Stats are the engine's publishing counters.
type Stats struct {
	Published, Dropped, Failed uint64
	Queued                     int
}

// Stats reports what Publish did so far.
func (e *Engine) Stats() Stats {
	return Stats{Published: e.published.Load(), Dropped: e.dropped.Load(), Failed: e.failed.Load(), Queued: len(e.queue)}
}

// Publish hands ev to the background publisher and returns at once: the
// request that caused it never waits for NATS. Events are sent in batches
// (asynchronous JetStream publishes, the event id as Nats-Msg-Id so a retry
// is stored once) and retried while NATS is away; when Buffer events are
// waiting, further ones are dropped and counted (Stats().Dropped).
// Publishers whose events must not be lost use PublishSync from an outbox.
func (e *Engine) Publish(ev *Event) bool {
	e.unsettled.Add(1)
	return e.enqueue(ev)
}

// enqueue queues an event counted in unsettled, or drops it.
func (e *Engine) enqueue(ev *Event) bool {
	select {
	case e.queue <- ev:
		return true
	default:
		e.dropped.Add(1)
		e.unsettled.Add(-1)
		return false
	}
}

// PublishSync publishes ev and waits for the stream's acknowledgement.
func (e *Engine) PublishSync(ctx context.Context, ev *Event) error {
	msg, err := e.message(ev)
	if err != nil {
		return err
	}
	if _, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID)); err != nil {
		return fmt.Errorf("events: publish: %w", err)
	}
	e.published.Add(1)
	return nil
}

func (e *Engine) message(ev *Event) (*nats.Msg, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: e.cfg.Names.Subject(ev.CompanyID, ev.Type), Data: body,
		Header: nats.Header{"Content-Type": []string{"application/cloudevents+json"}}}, nil
}

// run is the background publisher: it sends what Publish queued without
// waiting for each acknowledgement, and re-sends an event whose publish
// failed (NATS away, a timeout) after a pause, until the engine closes.
func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	type pending struct {
		ev  *Event
		ack jetstream.PubAckFuture
	}
	inflight := make(chan pending, 4096)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // acknowledgements, in publish order
		defer wg.Done()
		for p := range inflight {
			select {
			case <-p.ack.Ok():
				e.published.Add(1)
				e.unsettled.Add(-1)
			case err := <-p.ack.Err():
				e.failed.Add(1)
				e.log.Debug("event publish failed; retrying", zap.String("event_id", p.ev.ID), zap.Error(err))
				go e.retry(ctx, p.ev)
			case <-ctx.Done(): // closing: what is still unacknowledged stays so
			}
		}
	}()
	defer wg.Wait()
	defer close(inflight)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.queue:
			msg, err := e.message(ev)
			if err != nil {
				e.dropped.Add(1)
				e.unsettled.Add(-1)
				e.log.Warn("event dropped: invalid", zap.String("type", ev.Type), zap.Error(err))
				continue
			}
			for {
				ack, err := e.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID))
				if err == nil {
					inflight <- pending{ev, ack}
					break
				}
				select { // too many pending or disconnected: wait and try again
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}
}

// retry queues ev again after a pause (the queue's bound still holds).
func (e *Engine) retry(ctx context.Context, ev *Event) {
	select {
	case <-ctx.Done():
	case <-time.After(500 * time.Millisecond):
		e.enqueue(ev) // still unsettled: not counted again
	}
}

// Flush waits until every event Publish accepted is acknowledged (or
// dropped), including those waiting to be retried, or ctx ends.
func (e *Engine) Flush(ctx context.Context) error {
	for e.unsettled.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Close flushes briefly, then stops the publisher, the connection and the
// embedded server.
func (e *Engine) Close() {
	if e.stop != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = e.Flush(ctx)
		cancel()
		e.stop()
		<-e.done
	}
	if e.nc != nil {
		e.nc.Close()
	}
	e.closeServer()
}

func (e *Engine) closeServer() {
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
		e.ns = nil
	}
	if e.lock != nil {
		_ = unix.Flock(int(e.lock.Fd()), unix.LOCK_UN)
		e.lock.Close()
		e.lock = nil
	}
}
