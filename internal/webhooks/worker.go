package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
)

// workers deliver every enabled endpoint's events in this process: one
// subscription per endpoint to its durable consumer, shared with the
// workers of every other instance (the consumer hands each event to one of
// them).
type workers struct {
	m      *Manager
	eng    *events.Engine
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
	notify *nats.Subscription

	mu   sync.Mutex // serialises reconcile
	subs map[string]*sub
}

// sub is one endpoint's subscription in this process.
type sub struct {
	mu      sync.Mutex
	rec     Record // the endpoint as last read
	filters []string
	cc      jetstream.ConsumeContext
}

func (s *sub) record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

func (s *sub) setRecord(r Record) {
	s.mu.Lock()
	s.rec = r
	s.mu.Unlock()
}

// change is the notice of a changed endpoint on the sys subject.
type change struct {
	Company string `json:"company"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted,omitempty"`
}

// NotifySubject is the core NATS subject on which instances tell each
// other that an endpoint changed.
func NotifySubject(n events.Names) string { return n.Prefix + ".sys.webhooks" }

// Start runs the workers on eng until Close (or ctx ends). Calling it
// again does nothing.
func (m *Manager) Start(ctx context.Context, eng *events.Engine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.w != nil {
		return nil
	}
	m.engine.Store(eng)
	w := &workers{m: m, eng: eng, subs: map[string]*sub{}}
	w.ctx, w.cancel = context.WithCancel(ctx)
	sub, err := eng.Conn().Subscribe(NotifySubject(eng.Names()), func(msg *nats.Msg) {
		var c change
		if json.Unmarshal(msg.Data, &c) != nil || c.ID == "" {
			return
		}
		w.refresh(c)
	})
	if err != nil {
		w.cancel()
		return err
	}
	w.notify = sub
	m.w = w
	w.done.Add(1)
	go w.loop()
	return nil
}

// Close stops the workers (the durable consumers stay: other instances,
// or this one's next start, go on).
func (m *Manager) Close() {
	m.mu.Lock()
	w := m.w
	m.w = nil
	m.mu.Unlock()
	if w == nil {
		return
	}
	_ = w.notify.Unsubscribe()
	w.cancel()
	w.done.Wait()
	w.mu.Lock()
	for id, s := range w.subs {
		s.cc.Stop()
		delete(w.subs, id)
	}
	w.mu.Unlock()
}

// Destruct is Close (the erp app keeps a Manager across reloads).
func (m *Manager) Destruct() error {
	m.Close()
	return nil
}

func (m *Manager) workers() *workers {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w
}

// changed applies a change made here at once and tells the other
// instances. A deleted endpoint's durable consumer is deleted here.
func (m *Manager) changed(ctx context.Context, company, id string, deleted bool) {
	w := m.workers()
	if w == nil {
		return // not delivering yet: Start's first resync reads every endpoint
	}
	c := change{Company: company, ID: id, Deleted: deleted}
	if deleted {
		w.stop(id)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := w.eng.JetStream().DeleteConsumer(dctx, w.eng.Names().Stream, ConsumerName(id))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			m.log.Warn("webhook consumer not deleted; the resync retries", zap.String("endpoint_id", id), zap.Error(err))
		}
	} else {
		w.refresh(c)
	}
	if b, err := json.Marshal(c); err == nil {
		_ = w.eng.Conn().Publish(NotifySubject(w.eng.Names()), b)
	}
}

// refresh reads one endpoint again and reconciles its subscription.
func (w *workers) refresh(c change) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if c.Deleted {
		w.stop(c.ID)
		return
	}
	r, err := w.m.cfg.Store.GetEndpoint(ctx, c.Company, c.ID)
	if errors.Is(err, ErrNotFound) {
		w.stop(c.ID)
		return
	}
	if err != nil {
		w.m.log.Warn("webhook endpoint not read; the resync retries", zap.String("endpoint_id", c.ID), zap.Error(err))
		return
	}
	w.reconcile(ctx, r)
}

func (w *workers) stop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.subs[id]; s != nil {
		s.cc.Stop()
		delete(w.subs, id)
	}
}

// loop resyncs at once, then every Resync.
func (w *workers) loop() {
	defer w.done.Done()
	t := time.NewTicker(w.m.cfg.Resync)
	defer t.Stop()
	var lastPrune time.Time
	for {
		w.resync()
		if now := w.m.now(); now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
			if _, err := w.m.cfg.Store.PruneDeliveries(ctx, now.Add(-w.m.cfg.Retention)); err != nil && w.ctx.Err() == nil {
				w.m.log.Warn("webhook deliveries not pruned", zap.Error(err))
			}
			cancel()
		}
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resync reconciles every endpoint and stops subscriptions of endpoints
// that are gone.
func (w *workers) resync() {
	ctx, cancel := context.WithTimeout(w.ctx, w.m.cfg.Resync)
	defer cancel()
	all, err := w.m.cfg.Store.AllEndpoints(ctx)
	if err != nil {
		if w.ctx.Err() == nil {
			w.m.log.Warn("webhook endpoints not read", zap.Error(err))
		}
		return
	}
	seen := make(map[string]bool, len(all))
	enabled := 0
	for _, r := range all {
		seen[r.ID] = true
		if r.Enabled {
			enabled++
		}
		w.reconcile(ctx, r)
	}
	metricEndpoints.WithLabelValues("enabled").Set(float64(enabled))
	metricEndpoints.WithLabelValues("disabled").Set(float64(len(all) - enabled))
	w.mu.Lock()
	for id, s := range w.subs {
		if !seen[id] {
			s.cc.Stop()
			delete(w.subs, id)
		}
	}
	w.mu.Unlock()
	if w.m.cfg.PruneConsumers {
		w.pruneConsumers(ctx, seen)
	}
}

func (w *workers) pruneConsumers(ctx context.Context, seen map[string]bool) {
	st, err := w.eng.Stream(ctx)
	if err != nil {
		return
	}
	names := st.ConsumerNames(ctx)
	var orphans []string
	for n := range names.Name() {
		if validID("wh_", n) && !seen[n] {
			orphans = append(orphans, n)
		}
	}
	for _, n := range orphans {
		if err := st.DeleteConsumer(ctx, n); err == nil {
			w.m.log.Info("orphan webhook consumer deleted", zap.String("consumer", n))
		}
	}
}

// filters are the consumer's subject filters for r's patterns: one per
// pattern, minus those another covers; when two still overlap (a consumer
// refuses overlapping filters) the company's every event, and the worker
// matches the patterns itself.
func filters(n events.Names, company string, patterns []string) []string {
	subs := make([]string, 0, len(patterns))
	for _, p := range patterns {
		subs = append(subs, n.CompanyFilter(company, p))
	}
	slices.Sort(subs)
	subs = slices.Compact(subs)
	kept := subs[:0:0]
	for i, a := range subs {
		covered := false
		for j, b := range subs {
			if i != j && subjectCovers(b, a) && (!subjectCovers(a, b) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, a)
		}
	}
	for i := range kept {
		for j := i + 1; j < len(kept); j++ {
			if subjectsCollide(kept[i], kept[j]) {
				return []string{n.CompanyFilter(company, "*")}
			}
		}
	}
	return kept
}

// subjectCovers: every subject matching filter b matches filter a.
func subjectCovers(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i, x := range at {
		if x == ">" {
			return i < len(bt)
		}
		if i >= len(bt) {
			return false
		}
		y := bt[i]
		switch {
		case x == "*":
			if y == ">" {
				return false
			}
		case x != y:
			return false
		}
	}
	return len(at) == len(bt)
}

// subjectsCollide: some subject matches both filters.
func subjectsCollide(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(at) || i == len(bt) {
			return len(at) == len(bt)
		}
		x, y := at[i], bt[i]
		if x == ">" || y == ">" {
			return true
		}
		if x != "*" && y != "*" && x != y {
			return false
		}
	}
}

func (w *workers) consumerConfig(r *Record, filters []string) jetstream.ConsumerConfig {
	start := r.CreatedAt
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName(r.ID),
		Description:    "erpgate webhook endpoint " + r.ID,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        3*w.m.cfg.Timeout + 5*time.Second,
		MaxDeliver:     -1, // the worker gives up (Term) after the backoff schedule
		MaxAckPending:  w.m.cfg.MaxAckPending,
		FilterSubjects: filters,
	}
}

// reconcile makes this process's subscription of r what r says: none when
// disabled, else on a consumer with r's filters.
func (w *workers) reconcile(ctx context.Context, r Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	s := w.subs[r.ID]
	if !r.Enabled {
		if s != nil {
			s.cc.Stop()
			delete(w.subs, r.ID)
		}
		return
	}
	f := filters(w.eng.Names(), r.CompanyID, r.Events)
	if s != nil && slices.Equal(s.filters, f) {
		s.setRecord(r)
		return
	}
	cons, err := w.eng.JetStream().CreateOrUpdateConsumer(ctx, w.eng.Names().Stream, w.consumerConfig(&r, f))
	if err != nil {
		w.m.log.Warn("webhook consumer not ready; the resync retries", zap.String("endpoint_id", r.ID), zap.Error(err))
		return
	}
	if s != nil {
		s.cc.Stop()
	}
	ns := &sub{rec: r, filters: f}
	cc, err := cons.Consume(func(msg jetstream.Msg) { w.handle(ns, msg) },
		jetstream.PullMaxMessages(w.m.cfg.MaxAckPending),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if w.ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoHeartbeat) {
				w.m.log.Debug("webhook consumer", zap.String("endpoint_id", r.ID), zap.Error(err))
			}
		}))
	if err != nil {
		delete(w.subs, r.ID)
		w.m.log.Warn("webhook consumer not started; the resync retries", zap.String("endpoint_id", r.ID), zap.Error(err))
		return
	}
	ns.cc = cc
	w.subs[r.ID] = ns
}

func matchesAny(patterns []string, typ string) bool {
	for _, p := range patterns {
		if events.Match(p, typ) {
			return true
		}
	}
	return false
}

// handle delivers one event of s's endpoint (the consumer calls it for one
// message at a time per subscription).
func (w *workers) handle(s *sub, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	r := s.record()
	var head eventHead
	if json.Unmarshal(msg.Data(), &head) != nil || head.ID == "" || head.CompanyID != r.CompanyID {
		_ = msg.Term() // not an event of this company: never delivered
		return
	}
	if !matchesAny(r.Events, head.Type) {
		_ = msg.Ack() // a type the endpoint does not want (overlapping patterns' wider filter)
		return
	}
	if !r.Enabled {
		_ = msg.NakWithDelay(w.m.cfg.Resync) // delivered when it is enabled again
		return
	}
	m := w.m
	keys, err := m.keys(&r)
	if err != nil {
		m.log.Error("webhook not signed", zap.String("endpoint_id", r.ID), zap.Error(err))
		_ = msg.NakWithDelay(time.Minute)
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, m.cfg.Timeout)
	o := post(ctx, m.client, r.URL, head.ID, keys, msg.Data(), m.now())
	cancel()
	if w.ctx.Err() != nil {
		_ = msg.Nak() // stopping: another instance (or the next start) delivers it
		return
	}
	seq := meta.Sequence.Stream
	n := int(meta.NumDelivered)
	switch {
	case o.ok():
		_ = msg.Ack()
		w.record(r, head, seq, StatusSucceeded, o, nil)
		if r.FailingSince != nil {
			w.setFailing(s, r, false)
		}
	case o.gone():
		_ = msg.NakWithDelay(time.Minute) // delivered again if the endpoint is enabled again
		w.record(r, head, seq, StatusFailed, o, nil)
		w.disable(s, r, ReasonGone)
	case n > len(m.cfg.Backoff):
		_ = msg.Term()
		w.record(r, head, seq, StatusGaveUp, o, nil)
		w.failing(s, r)
	default:
		d := jitter(m.cfg.Backoff[n-1])
		_ = msg.NakWithDelay(d)
		next := m.now().Add(d).UTC().Truncate(time.Microsecond)
		w.record(r, head, seq, StatusFailed, o, &next)
		w.failing(s, r)
	}
}

func (w *workers) record(r Record, head eventHead, seq uint64, status string, o outcome, next *time.Time) {
	observe(status, "stream", o)
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	d := w.m.delivery(&r, head.ID, head.Type, seq, status, o, next)
	if _, err := w.m.cfg.Store.AddDelivery(ctx, d); err != nil && !errors.Is(err, ErrNotFound) {
		w.m.log.Warn("webhook delivery not recorded", zap.String("endpoint_id", r.ID), zap.Error(err))
	}
}

// failing notes a failed attempt: the endpoint is failing since now, or,
// when it has been for DisableAfter, is disabled.
func (w *workers) failing(s *sub, r Record) {
	if r.FailingSince == nil {
		w.setFailing(s, r, true)
		return
	}
	if w.m.now().Sub(*r.FailingSince) >= w.m.cfg.DisableAfter {
		w.disable(s, r, ReasonFailing)
	}
}

func (w *workers) setFailing(s *sub, r Record, failing bool) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	now := w.m.now().UTC().Truncate(time.Microsecond)
	nr, err := w.m.cfg.Store.UpdateEndpoint(ctx, r.CompanyID, r.ID, func(x *Record) error {
		switch {
		case failing && x.FailingSince == nil:
			x.FailingSince = &now
		case !failing:
			x.FailingSince = nil
		}
		return nil
	})
	if err == nil {
		s.setRecord(nr)
	}
}

var errAlreadyDisabled = errors.New("webhooks: already disabled")

// disable turns the endpoint off for reason; the instance that does it
// publishes erp.webhooks.endpoint_disabled (the company's event).
func (w *workers) disable(s *sub, r Record, reason string) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	now := w.m.now().UTC().Truncate(time.Microsecond)
	nr, err := w.m.cfg.Store.UpdateEndpoint(ctx, r.CompanyID, r.ID, func(x *Record) error {
		if !x.Enabled {
			return errAlreadyDisabled
		}
		x.Enabled, x.DisabledReason, x.UpdatedAt = false, reason, now
		return nil
	})
	if err != nil {
		if !errors.Is(err, errAlreadyDisabled) && !errors.Is(err, ErrNotFound) {
			w.m.log.Warn("webhook endpoint not disabled", zap.String("endpoint_id", r.ID), zap.Error(err))
		}
		return
	}
	s.setRecord(nr)
	metricDisabled.WithLabelValues(reason).Inc()
	w.m.log.Info("webhook endpoint disabled", zap.String("endpoint_id", r.ID), zap.String("reason", reason))
	data := map[string]any{"endpoint_id": r.ID, "reason": reason}
	if nr.FailingSince != nil {
		data["failing_since"] = nr.FailingSince
	}
	if ev, err := events.New(w.m.cfg.Source, TypeEndpointDisabled, r.CompanyID, r.ID, data); err == nil {
		w.eng.Publish(ev)
	}
	// Stop consuming from outside the consumer's callback (Stop waits for
	// nothing, but reconcile takes the workers' lock).
	go w.m.changed(context.WithoutCancel(ctx), r.CompanyID, r.ID, false)
}
