package edgeauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/sampling"
)

// Defaults of the erp app's refusal_audit (erpapp.RefusalAudit).
const (
	DefaultRefusalSample   = 10
	DefaultRefusalInterval = time.Minute
	DefaultRefusalBuffer   = 256
)

// Reasons of the edge's refusal records (Details["reason"]): a short fixed
// list, stored and filtered on — never rename one.
const (
	ReasonMalformed    = "malformed"     // not a token or key at all
	ReasonUnknownKey   = "unknown_key"   // signed by a key the JWKS does not have
	ReasonBadSignature = "bad_signature" // signature or algorithm wrong
	ReasonBadClaims    = "bad_claims"    // typ, iss, aud, nbf, iat or required claims wrong
	ReasonExpired      = "expired"
	ReasonRevoked      = "revoked"  // the token's session was ended
	ReasonInactive     = "inactive" // an API key unknown, revoked or expired
	ReasonInvalid      = "invalid"  // anything else
)

// SampleKey is what the audit samples refusals by.
type SampleKey struct{ Provider, Reason string }

// RefusalAuditor audits the credentials the edge's providers refuse on
// proxied routes: sampled per provider and reason (see sampling.Sampler and
// erpapp.RefusalAudit), written by one background goroutine through a
// bounded buffer, so that a refusal never waits for the trail and a flood
// can't fill it. The trail is the in-process auth service's; without one,
// records become log lines. Nothing of the credential but an API key's
// public prefix reaches a record.
type RefusalAuditor struct {
	sampler  sampling.Sampler[SampleKey]
	now      func() time.Time
	buf      chan store.Event
	write    func(context.Context, store.Event) error
	tick     time.Duration
	logger   *zap.Logger
	outcomes [3]prometheus.Counter // by sampling.Outcome
	base     context.Context

	startOnce sync.Once
	mu        sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
}

// AuditorOptions make a RefusalAuditor; zero values take the defaults.
type AuditorOptions struct {
	Sample   int
	Interval time.Duration
	Buffer   int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Write appends a record to the trail. Default: none (every record
	// becomes a log line); RefusalAuditorFor writes to the in-process auth
	// service's trail.
	Write func(context.Context, store.Event) error
	// Tick is how often ended windows are summarised. Default: Interval/4,
	// at most 1s.
	Tick    time.Duration
	Logger  *zap.Logger
	Metrics *Metrics
}

// NewRefusalAuditor makes an auditor whose goroutine, started at the first
// refusal, stops when base is cancelled or Close is called.
func NewRefusalAuditor(base context.Context, o AuditorOptions) *RefusalAuditor {
	if o.Sample <= 0 {
		o.Sample = DefaultRefusalSample
	}
	if o.Interval <= 0 {
		o.Interval = DefaultRefusalInterval
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultRefusalBuffer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Write == nil {
		o.Write = func(context.Context, store.Event) error { return errNoTrail }
	}
	if o.Tick <= 0 {
		o.Tick = min(o.Interval/4, time.Second)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	a := &RefusalAuditor{
		sampler: sampling.Sampler[SampleKey]{PerInterval: o.Sample, Interval: o.Interval},
		now:     o.Now, buf: make(chan store.Event, o.Buffer), write: o.Write, tick: o.Tick, logger: o.Logger, base: base,
	}
	for i := range a.outcomes {
		if o.Metrics != nil {
			a.outcomes[i] = o.Metrics.RefusalAudit.WithLabelValues(sampling.Outcome(i).String())
		} else {
			a.outcomes[i] = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
		}
	}
	return a
}

// RefusalAuditorFor is the auditor of app's config, made at the first call
// with the app's refusal_audit settings and closed with the config. Its
// trail is the in-process auth service's (erpapp.App.AuthService).
func RefusalAuditorFor(app *erpapp.App, m *Metrics, logger *zap.Logger) (*RefusalAuditor, error) {
	return erpapp.OfConfig(app, func() (*RefusalAuditor, error) {
		o := AuditorOptions{Logger: logger, Metrics: m, Write: func(ctx context.Context, ev store.Event) error {
			svc, err := app.AuthService()
			if err != nil {
				return errNoTrail
			}
			return svc.Record(ctx, ev)
		}}
		if ra := app.RefusalAudit; ra != nil {
			o.Sample, o.Interval, o.Buffer = ra.Sample, time.Duration(ra.Interval), ra.Buffer
		}
		return NewRefusalAuditor(app.Context(), o), nil
	})
}

// Refused audits one refused credential of r: which provider refused it
// and why (a Reason*), and for an API key its public prefix (pass the key:
// only a well-formed key's prefix is kept). It never blocks.
func (a *RefusalAuditor) Refused(r *http.Request, provider, reason, apiKey string) {
	if a == nil {
		return
	}
	a.startOnce.Do(a.start)
	now := a.now()
	out := a.sampler.Offer(SampleKey{Provider: provider, Reason: reason}, now, func() bool {
		ev := store.Event{
			Time: now, Type: store.EventEdgeCredentialRefused, IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r),
			Details: map[string]string{"provider": provider, "reason": reason},
		}
		if p := authsvc.APIKeyPrefix(apiKey); p != "" {
			ev.Details["key_prefix"] = p
		}
		select {
		case a.buf <- ev:
			return true
		default:
			return false
		}
	})
	a.outcomes[out].Inc()
}

func (a *RefusalAuditor) start() {
	ctx, cancel := context.WithCancel(a.base)
	done := make(chan struct{})
	a.mu.Lock()
	a.cancel, a.done = cancel, done
	a.mu.Unlock()
	go a.run(ctx, done)
}

// Close stops the goroutine after it wrote what is buffered and the
// summaries of the open windows (also done when the config's context ends).
func (a *RefusalAuditor) Close() error {
	a.startOnce.Do(func() {}) // not started: never will be
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

func (a *RefusalAuditor) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(a.tick)
	defer t.Stop()
	for {
		select {
		case ev := <-a.buf:
			a.record(ctx, ev)
		case <-t.C:
			for _, s := range a.sampler.Flush(a.now()) {
				a.record(ctx, summaryEvent(s))
			}
		case <-ctx.Done():
			// The config is going: write what is left, bounded in time.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for drained := false; !drained; {
				select {
				case ev := <-a.buf:
					a.record(fctx, ev)
				default:
					drained = true
				}
			}
			for _, s := range a.sampler.FlushAll(a.now()) {
				a.record(fctx, summaryEvent(s))
			}
			return
		}
	}
}

func summaryEvent(s sampling.Summary[SampleKey]) store.Event {
	return store.Event{Time: s.End, Type: store.EventEdgeRefusalSummary, Details: map[string]string{
		"provider": s.Key.Provider, "reason": s.Key.Reason,
		"count": strconv.FormatInt(s.Count(), 10), "total": strconv.FormatInt(s.Total, 10),
		"recorded": strconv.FormatInt(s.Recorded, 10), "dropped": strconv.FormatInt(s.Dropped, 10),
		"window_start": s.Start.UTC().Format(time.RFC3339Nano), "window_end": s.End.UTC().Format(time.RFC3339Nano),
	}}
}

// errNoTrail: no config has an in-process auth service.
var errNoTrail = errors.New("no in-process auth service")

// record writes one record; what can't reach the trail becomes a log line.
// A write under way finishes (bounded) even when the config is going.
func (a *RefusalAuditor) record(ctx context.Context, ev store.Event) {
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl // the drain's bound holds for the whole drain, not per record
	}
	wctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	err := a.write(wctx, ev)
	cancel()
	if err == nil {
		return
	}
	fields := []zap.Field{zap.String("type", ev.Type), zap.String("ip", ev.IP), zap.String("request_id", ev.RequestID), zap.Any("details", ev.Details)}
	switch {
	case errors.Is(err, errNoTrail) && ev.Type == store.EventEdgeRefusalSummary:
		a.logger.Warn("credentials refused at the edge (summary)", fields...)
	case errors.Is(err, errNoTrail):
		a.logger.Info("credential refused at the edge", fields...)
	default:
		a.logger.Warn("audit record of an edge refusal not written; logged instead", append(fields, zap.Error(err))...)
	}
}

func requestID(r *http.Request) string {
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	return id
}

func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	return authsvc.RemoteIP(r)
}
