package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// closed reports whether the subscription ended by itself (its consumer
// was deleted, say): the next reconcile makes it again.
func (s *sub) closed() bool {
	select {
	case <-s.cc.Closed():
		return true
	default:
		return false
	}
}

func (s *sub) record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// setRecord keeps r unless the record held is newer.
func (s *sub) setRecord(r Record) {
	s.mu.Lock()
	if !r.UpdatedAt.Before(s.rec.UpdatedAt) {
		s.rec = r
	}
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

// refresh reads one endpoint again and reconciles its subscription. The
// read and the change happen under the workers' lock, so a slower refresh
// never puts back what a newer one replaced.
func (w *workers) refresh(c change) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	r, err := w.m.cfg.Store.GetEndpoint(ctx, c.Company, c.ID)
	if errors.Is(err, ErrNotFound) {
		w.stopLocked(c.ID)
		return
	}
	if err != nil {
		w.m.log.Warn("webhook endpoint not read; the resync retries", zap.String("endpoint_id", c.ID), zap.Error(err))
		return
	}
	w.reconcileLocked(ctx, r)
}

func (w *workers) stop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked(id)
}

func (w *workers) stopLocked(id string) {
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
		w.mu.Lock()
		s := w.subs[r.ID]
		current := s != nil && r.Enabled && s.record().UpdatedAt.Equal(r.UpdatedAt) && !s.closed() || s == nil && !r.Enabled
		w.mu.Unlock()
		if !current { // a change this instance missed (or its own to retry): read it again
			w.refresh(change{Company: r.CompanyID, ID: r.ID})
		}
	}
	metricEndpoints.WithLabelValues("enabled").Set(float64(enabled))
	metricEndpoints.WithLabelValues("disabled").Set(float64(len(all) - enabled))
	w.mu.Lock()
	var gone []change
	for id, s := range w.subs {
		if !seen[id] {
			gone = append(gone, change{Company: s.record().CompanyID, ID: id})
		}
	}
	w.mu.Unlock()
	for _, c := range gone { // deleted, or made after the list was read
		w.refresh(c)
	}
	if w.m.cfg.PruneConsumers || w.eng.Embedded() { // an embedded server has this process alone
		w.pruneConsumers(ctx)
	}
}

// pruneConsumers deletes the webhook consumers no endpoint has. The
// consumers are listed before the endpoints are read: an endpoint's row is
// written before its consumer, so a consumer made while this runs is
// never taken for an orphan.
func (w *workers) pruneConsumers(ctx context.Context) {
	st, err := w.eng.Stream(ctx)
	if err != nil {
		return
	}
	names := st.ConsumerNames(ctx)
	var candidates []string
	for n := range names.Name() {
		if validID("wh_", n) {
			candidates = append(candidates, n)
		}
	}
	if names.Err() != nil || len(candidates) == 0 {
		return
	}
	all, err := w.m.cfg.Store.AllEndpoints(ctx)
	if err != nil {
		return
	}
	seen := make(map[string]bool, len(all))
	for _, r := range all {
		seen[r.ID] = true
	}
	var orphans []string
	for _, n := range candidates {
		if !seen[n] {
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

func (w *workers) consumerConfig(r *Record, filters []string, start time.Time) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       ConsumerName(r.ID),
		Description:   "erpgate webhook endpoint " + r.ID,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &start,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       3*w.m.cfg.Timeout + 5*time.Second,
		MaxDeliver:    -1, // the worker gives up (Term) after the backoff schedule
		MaxAckPending: w.m.cfg.MaxAckPending,
	}
	setFilters(&cfg, filters)
	return cfg
}

func setFilters(cfg *jetstream.ConsumerConfig, filters []string) {
	cfg.FilterSubject, cfg.FilterSubjects = "", nil
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0] // the server keeps one filter in this field
	} else {
		cfg.FilterSubjects = filters
	}
}

func consumerFilters(cfg *jetstream.ConsumerConfig) []string {
	if cfg.FilterSubject != "" {
		return []string{cfg.FilterSubject}
	}
	return cfg.FilterSubjects
}

// multiFilter reports whether the server takes several filter subjects
// per consumer (nats-server 2.10 and later).
func (w *workers) multiFilter() bool {
	var major, minor int
	if _, err := fmt.Sscanf(w.eng.Conn().ConnectedServerVersion(), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 10
}

// wantFilters are the subject filters of r's consumer on this server.
func (w *workers) wantFilters(r *Record) []string {
	f := filters(w.eng.Names(), r.CompanyID, r.Events)
	if len(f) > 1 && !w.multiFilter() {
		return []string{w.eng.Names().CompanyFilter(r.CompanyID, "*")} // the worker matches the patterns
	}
	return f
}

// freshStart is where a consumer made for r starts: the endpoint's creation
// when it is recent (the consumer is usually made at once; the engine may
// have started late), else now (a consumer lost long after: no replay of
// the whole stream).
func (w *workers) freshStart(r *Record) time.Time {
	now := w.m.now().UTC()
	if now.Sub(r.CreatedAt) < time.Hour {
		return r.CreatedAt
	}
	return now
}

// ensureConsumer is r's durable consumer with filters f: the existing one
// as it is when its filters are f (an update is not needed, and servers
// before 2.10 refuse one that names a start time), else updated; when the
// server refuses the update, made again from the old one's ack floor.
func (w *workers) ensureConsumer(ctx context.Context, r *Record, f []string) (jetstream.Consumer, error) {
	js, stream, name := w.eng.JetStream(), w.eng.Names().Stream, ConsumerName(r.ID)
	cons, err := js.Consumer(ctx, stream, name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return js.CreateConsumer(ctx, stream, w.consumerConfig(r, f, w.freshStart(r)))
	case err != nil:
		return nil, err
	}
	info := cons.CachedInfo()
	cfg := info.Config
	if slices.Equal(consumerFilters(&cfg), f) {
		return cons, nil
	}
	setFilters(&cfg, f)
	updated, err := js.UpdateConsumer(ctx, stream, cfg)
	if err == nil {
		return updated, nil
	}
	// Made again from its ack floor: events not acknowledged yet (waiting
	// for a retry) are delivered again, none is lost.
	w.m.log.Info("webhook consumer made again: the server does not update its filters", zap.String("endpoint_id", r.ID), zap.Error(err))
	fresh := w.consumerConfig(r, f, w.freshStart(r))
	if info.AckFloor.Stream > 0 {
		fresh.DeliverPolicy, fresh.OptStartTime, fresh.OptStartSeq = jetstream.DeliverByStartSequencePolicy, nil, info.AckFloor.Stream+1
	} else if cfg.OptStartTime != nil {
		fresh.OptStartTime = cfg.OptStartTime
	}
	if err := js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	return js.CreateConsumer(ctx, stream, fresh)
}

// reconcileLocked makes this process's subscription of r what r says: none
// when disabled, else on a consumer with r's filters. w.mu is held.
func (w *workers) reconcileLocked(ctx context.Context, r Record) {
	s := w.subs[r.ID]
	if !r.Enabled {
		if s != nil {
			s.cc.Stop()
			delete(w.subs, r.ID)
		}
		return
	}
	f := w.wantFilters(&r)
	if s != nil && slices.Equal(s.filters, f) && !s.closed() {
		s.setRecord(r)
		return
	}
	cons, err := w.ensureConsumer(ctx, &r, f)
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
		_ = msg.NakWithDelay(2 * time.Second) // delivered when it is enabled again (this subscription stops)
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
	// The attempt is recorded before the message is settled: a crash in
	// between repeats an attempt, never hides one.
	switch {
	case o.ok():
		w.record(r, head, seq, StatusSucceeded, o, nil)
		_ = msg.Ack()
		if r.FailingSince != nil {
			w.setFailing(s, r, false)
		}
	case o.gone():
		w.record(r, head, seq, StatusFailed, o, nil)
		_ = msg.NakWithDelay(2 * time.Second) // delivered when the endpoint is enabled again
		w.disable(s, r, ReasonGone)
	case n > len(m.cfg.Backoff):
		w.record(r, head, seq, StatusGaveUp, o, nil)
		_ = msg.Term()
		w.failing(s, r)
	default:
		d := jitter(m.cfg.Backoff[n-1])
		next := m.now().Add(d).UTC().Truncate(time.Microsecond)
		w.record(r, head, seq, StatusFailed, o, &next)
		_ = msg.NakWithDelay(d)
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
			x.FailingSince, x.UpdatedAt = &now, now
		case !failing && x.FailingSince != nil:
			x.FailingSince, x.UpdatedAt = nil, now
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
