package erpapp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/internal/events"
)

// NATS configures the event engine (internal/events): NATS JetStream,
// embedded in this process by default, or an external cluster.
//
//	erp {
//		nats {env.ERP_NATS_URL} {
//			replicas 3
//			max_age  168h
//		}
//	}
type NATS struct {
	// URL of an external NATS server or cluster (comma-separated seeds;
	// placeholders resolved). Empty: an embedded nats-server with its
	// JetStream file store in Caddy's data directory (one process per
	// data directory and key prefix). Default: empty.
	URL string `json:"url,omitempty"`

	// Replicas of the events stream on a cluster. Default: 1.
	Replicas int `json:"replicas,omitempty"`

	// MaxAge is how long the stream keeps events (how far back SSE can
	// resume and webhook retries reach). Default: 168h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
}

func init() {
	subdirectives["nats"] = parseNATS
}

func parseNATS(a *App, d *caddyfile.Dispenser) error {
	n := new(NATS)
	args := d.RemainingArgs()
	if len(args) > 1 {
		return d.ArgErr()
	}
	if len(args) == 1 {
		n.URL = args[0]
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "replicas":
			var v int
			if !d.NextArg() {
				return d.ArgErr()
			}
			if _, err := fmt.Sscan(d.Val(), &v); err != nil || v < 1 || v > 5 {
				return d.Errf("replicas: expected 1 to 5")
			}
			n.Replicas = v
		case "max_age":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("max_age: expected a positive duration")
			}
			n.MaxAge = caddy.Duration(dur)
		default:
			return d.Errf("nats: unknown subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	a.NATS = n
	return nil
}

func (n *NATS) validate() error {
	if n == nil {
		return nil
	}
	if n.Replicas < 0 || n.Replicas > 5 {
		return errors.New("erp: nats: replicas must be 1 to 5")
	}
	if n.MaxAge < 0 {
		return errors.New("erp: nats: max_age must be positive")
	}
	return nil
}

// natsURL is the resolved URL of the external NATS ("" embedded).
func (a *App) natsURL() string {
	if a.NATS == nil {
		return ""
	}
	return caddy.NewReplacer().ReplaceAll(a.NATS.URL, "")
}

// ErrEventsNotReady: the event engine has not started (yet).
var ErrEventsNotReady = errors.New("erp: the event engine is not ready")

// Events is the event engine shared by the configs of this Lasting, once
// it started (the app's Start opens it; with an external NATS that does
// not answer it keeps trying in the background).
func (a *App) Events() (*events.Engine, error) { return a.lasting.Events() }

// Events is the Lasting's event engine, or ErrEventsNotReady.
func (l *Lasting) Events() (*events.Engine, error) {
	if e := l.events.Load(); e != nil {
		return e, nil
	}
	return nil, ErrEventsNotReady
}

// eventPublisher is the engine as the auth service's event relay takes
// it: nil until it started.
func (l *Lasting) eventPublisher() core.EventPublisher {
	if e := l.events.Load(); e != nil {
		return e
	}
	return nil
}

// EventsWait waits for the event engine until ctx ends.
func (l *Lasting) EventsWait(ctx context.Context) (*events.Engine, error) {
	select {
	case <-l.eventsReady: // closed once events is set
		return l.events.Load(), nil
	case <-ctx.Done():
		return nil, ErrEventsNotReady
	}
}

// eventsReadiness: nil when the event engine runs and is connected.
func (l *Lasting) eventsReadiness() error {
	e := l.events.Load()
	switch {
	case e == nil:
		return errors.New("event engine not started")
	case !e.Ready():
		return errors.New("nats unreachable")
	}
	return nil
}

// Instance names this process in the source of the events it publishes.
func (l *Lasting) Instance() string { return l.instance }

// startEvents opens the event engine once, in the background, retrying
// until it starts or the Lasting is destroyed.
func (l *Lasting) startEvents(n *NATS, url string, logger *zap.Logger) {
	l.eventsOnce.Do(func() {
		cfg := events.Config{URL: url, Names: events.NamesFor(l.prefix), Logger: logger.Named("events")}
		if n != nil {
			cfg.Replicas = n.Replicas
			cfg.MaxAge = time.Duration(n.MaxAge)
		}
		if url == "" {
			cfg.StoreDir = filepath.Join(caddy.AppDataDir(), "erpgate", "nats", cfg.Names.Stream)
		}
		open := func() bool {
			ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
			defer cancel()
			e, err := events.Open(ctx, cfg)
			if err != nil {
				logger.Warn("event engine not started; retrying", zap.Bool("embedded", url == ""), zap.Error(err))
				return false
			}
			l.events.Store(e)
			close(l.eventsReady)
			logger.Info("event engine started", zap.Bool("embedded", url == ""), zap.String("stream", cfg.Names.Stream))
			return true
		}
		if open() {
			return
		}
		go func() {
			for {
				select {
				case <-l.ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
				if open() {
					return
				}
			}
		}()
	})
}

func hostnameOr(def string) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return def
}

// BackendEvents configures the business events of a backend: each
// successful write through the edge (POST, PUT, PATCH or DELETE answered
// 2xx) publishes `erp.<resource>.created|updated|deleted` with the
// resource id as subject and the answer's data.
//
//	backend invoices {
//		events off              # publish nothing
//	}
//	backend ledger {
//		events {
//			resource ledger_entries   # erp.ledger_entries.created, …
//		}
//	}
type BackendEvents struct {
	// Off turns the backend's events off. Default: false.
	Off bool `json:"off,omitempty"`
	// Resource names the resource in the event types (letters, digits,
	// '_' and '-'). Default: the backend's name.
	Resource string `json:"resource,omitempty"`
}

func parseBackendEvents(d *caddyfile.Dispenser, backend string) (*BackendEvents, error) {
	ev := new(BackendEvents)
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && (args[0] == "off" || args[0] == "on"):
		ev.Off = args[0] == "off"
	case len(args) != 0:
		return nil, d.Errf("backend %s: events: expected on, off or a block", backend)
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "resource":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			ev.Resource = d.Val()
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("backend %s: events: unknown subdirective %q", backend, d.Val())
		}
	}
	return ev, nil
}

// EventResource is the resource named in the types of the backend's
// business events, or "" when they are off.
func (b *Backend) EventResource() string {
	switch {
	case b.Events != nil && b.Events.Off:
		return ""
	case b.Events != nil && b.Events.Resource != "":
		return b.Events.Resource
	}
	return b.name
}

func (ev *BackendEvents) validate() error {
	if ev == nil || ev.Resource == "" {
		return nil
	}
	if strings.Contains(ev.Resource, ".") || !events.ValidType(ev.Resource) {
		return errors.New("events: resource must be letters, digits, '_' and '-'")
	}
	return nil
}

// eventsCollector exports the event engine's publishing counters on the
// config's registry (the engine is lasting, so its counts go on across
// reloads).
type eventsCollector struct{ l *Lasting }

var (
	descEventsPublished = prometheus.NewDesc("erpgate_events_published_total", "Events the stream acknowledged (Publish and PublishSync).", nil, nil)
	descEventsDropped   = prometheus.NewDesc("erpgate_events_dropped_total", "Events Publish dropped: its buffer was full, or the event was invalid.", nil, nil)
	descEventsRetried   = prometheus.NewDesc("erpgate_events_publish_retries_total", "Asynchronous publishes that failed and were queued again.", nil, nil)
	descEventsQueued    = prometheus.NewDesc("erpgate_events_queued", "Events waiting in Publish's buffer.", nil, nil)
)

func (c eventsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEventsPublished
	ch <- descEventsDropped
	ch <- descEventsRetried
	ch <- descEventsQueued
}

func (c eventsCollector) Collect(ch chan<- prometheus.Metric) {
	var st events.Stats
	if e := c.l.events.Load(); e != nil {
		st = e.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descEventsPublished, prometheus.CounterValue, float64(st.Published))
	ch <- prometheus.MustNewConstMetric(descEventsDropped, prometheus.CounterValue, float64(st.Dropped))
	ch <- prometheus.MustNewConstMetric(descEventsRetried, prometheus.CounterValue, float64(st.Failed))
	ch <- prometheus.MustNewConstMetric(descEventsQueued, prometheus.GaugeValue, float64(st.Queued))
}
