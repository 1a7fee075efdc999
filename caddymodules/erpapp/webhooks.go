package erpapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/promreg"
	"github.com/erpgate/erpgate/internal/webhooks"
)

// Webhooks configures the webhook engine (internal/webhooks): the
// company's endpoints, served by erp_webhooks, and the delivery workers,
// which run in every instance once the event engine is up.
//
//	erp {
//		webhooks {
//			backoff       "{env.ERP_WEBHOOK_BACKOFF}"
//			allow_private {env.ERP_WEBHOOK_ALLOW_PRIVATE}
//			disable_after 120h
//			timeout       10s
//			max_endpoints 50
//		}
//	}
//
// Endpoints and attempts are kept in Postgres when the app has one (tables
// of migration 0008), else in process (kept across reloads, not restarts).
// Secrets are sealed with the auth service's master key.
type Webhooks struct {
	// Backoff is the pause before each retry of a failed attempt:
	// space-separated durations (placeholders resolved; ERP_WEBHOOK_BACKOFF).
	// Each is applied with ±20% jitter; after the last the event is given
	// up. Default: `5s 30s 2m 10m 1h 6h 24h`.
	Backoff string `json:"backoff,omitempty"`

	// AllowPrivate lets endpoints reach loopback, private, link-local and
	// metadata addresses: `1`/`true`/`on` (placeholders resolved;
	// ERP_WEBHOOK_ALLOW_PRIVATE). Only for tests and the demo. Default: off.
	AllowPrivate string `json:"allow_private,omitempty"`

	// DisableAfter: an endpoint whose attempts all failed for this long is
	// disabled and erp.webhooks.endpoint_disabled published. Default: 120h.
	DisableAfter caddy.Duration `json:"disable_after,omitempty"`

	// Timeout bounds one delivery attempt. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// MaxEndpoints per company. Default: 50.
	MaxEndpoints int `json:"max_endpoints,omitempty"`
}

func init() {
	subdirectives["webhooks"] = parseWebhooks
}

func parseWebhooks(a *App, d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	w := new(Webhooks)
	err := caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		switch name {
		case "backoff":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			w.Backoff = strings.Join(args, " ")
			return nil
		case "allow_private":
			if !d.NextArg() {
				return d.ArgErr()
			}
			w.AllowPrivate = d.Val()
		case "disable_after", "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil || dur <= 0 {
				return d.Errf("%s: expected a positive duration", name)
			}
			if name == "timeout" {
				w.Timeout = caddy.Duration(dur)
			} else {
				w.DisableAfter = caddy.Duration(dur)
			}
		case "max_endpoints":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 || n > 10000 {
				return d.Errf("max_endpoints: expected 1 to 10000")
			}
			w.MaxEndpoints = n
		default:
			return d.Errf("webhooks: unknown subdirective %q", name)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.WebhooksConfig = w
	return nil
}

// webhookSettings are Webhooks resolved (placeholders replaced, checked).
type webhookSettings struct {
	backoff      []time.Duration
	allowPrivate bool
	disableAfter time.Duration
	timeout      time.Duration
	maxEndpoints int
}

func (w *Webhooks) settings() (webhookSettings, error) {
	if w == nil {
		w = &Webhooks{}
	}
	repl := caddy.NewReplacer()
	s := webhookSettings{disableAfter: time.Duration(w.DisableAfter), timeout: time.Duration(w.Timeout), maxEndpoints: w.MaxEndpoints}
	if s.disableAfter < 0 || s.timeout < 0 || s.maxEndpoints < 0 {
		return s, errors.New("erp: webhooks: disable_after, timeout and max_endpoints must be positive")
	}
	if b := strings.TrimSpace(repl.ReplaceAll(w.Backoff, "")); b != "" {
		var err error
		if s.backoff, err = webhooks.ParseBackoff(b); err != nil {
			return s, fmt.Errorf("erp: %w", err)
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(repl.ReplaceAll(w.AllowPrivate, ""))); v {
	case "", "0", "false", "off", "no":
	case "1", "true", "on", "yes":
		s.allowPrivate = true
	default:
		return s, errors.New("erp: webhooks: allow_private: expected 1 or 0")
	}
	return s, nil
}

func (s webhookSettings) key() string {
	return fmt.Sprintf("%v|%t|%s|%s|%d", s.backoff, s.allowPrivate, s.disableAfter, s.timeout, s.maxEndpoints)
}

// lastingMemoryWebhooks is the embedded webhook store, kept across reloads.
type lastingMemoryWebhooks struct{ *webhooks.Memory }

func (lastingMemoryWebhooks) Destruct() error { return nil }

// lastingWebhooks is the webhook Manager of a Lasting and settings: its
// workers start when the event engine is ready and stop when the last
// config using it is cleaned up.
type lastingWebhooks struct {
	*webhooks.Manager
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *lastingWebhooks) Destruct() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel()
	w.Manager.Close()
	return nil
}

// run waits for the event engine (and, with Postgres, the schema), then
// starts the workers, unless the value was destroyed first.
func (w *lastingWebhooks) run(l *Lasting, logger *zap.Logger) {
	eng, err := l.EventsWait(w.ctx)
	if err != nil {
		return
	}
	for l.pg != nil {
		ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
		_, err := store.Migrate(ctx, l.pg) // the auth service applies them too; each applies once
		cancel()
		if err == nil {
			break
		}
		logger.Warn("webhooks: database schema not ready; retrying", zap.Error(err))
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	if err := w.Manager.Start(w.ctx, eng); err != nil {
		logger.Error("webhooks: delivery workers not started", zap.Error(err))
	}
}

// Webhooks is the webhook service of the config (erp_webhooks serves it);
// the delivery workers behind it run from the app's Start.
func (a *App) Webhooks() (webhooks.Service, error) { return a.webhookManager() }

func (a *App) webhookManager() (*webhooks.Manager, error) {
	a.mu.Lock()
	if a.closed { // its lasting entries were given back
		a.mu.Unlock()
		return nil, errors.New("erp: the config was unloaded")
	}
	if a.webhooks != nil || a.webhooksErr != nil {
		defer a.mu.Unlock()
		return a.webhooks, a.webhooksErr
	}
	a.mu.Unlock()
	m, err := a.makeWebhooks()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.webhooks == nil && a.webhooksErr == nil {
		a.webhooks, a.webhooksErr = m, err
	}
	return a.webhooks, a.webhooksErr
}

func (a *App) makeWebhooks() (*webhooks.Manager, error) {
	s, err := a.WebhooksConfig.settings()
	if err != nil {
		return nil, err
	}
	if err := promreg.RegisterProcessWide(a.ctx.GetMetricsRegistry(), webhooks.Collectors()...); err != nil {
		return nil, fmt.Errorf("erp: webhooks: metrics: %w", err)
	}
	mk := a.authCfg.MasterKey
	if len(mk) == 0 {
		if mk, err = a.lasting.ephemeralMasterKey(a.logger); err != nil {
			return nil, err
		}
	}
	sealer, err := core.NewSealer(mk)
	if err != nil {
		return nil, fmt.Errorf("erp: webhooks: %w", err)
	}
	var st webhooks.Store
	if a.lasting.pg != nil {
		st = webhooks.NewPostgres(a.lasting.pg)
	} else {
		mem, err := Keep(a, "webhooks-store", func(*Lasting) (lastingMemoryWebhooks, error) {
			return lastingMemoryWebhooks{webhooks.NewMemory()}, nil
		})
		if err != nil {
			return nil, err
		}
		st = mem.Memory
	}
	fp := sha256.Sum256(mk) // the key tells sealers apart without holding the key
	key := "webhooks\x00" + s.key() + "\x00" + hex.EncodeToString(fp[:8])
	logger := a.logger.Named("webhooks")
	lw, err := Keep(a, key, func(l *Lasting) (*lastingWebhooks, error) {
		m, err := webhooks.New(webhooks.Config{
			Store: st, Sealer: sealer, Backoff: s.backoff, AllowPrivate: s.allowPrivate,
			DisableAfter: s.disableAfter, Timeout: s.timeout, MaxEndpoints: s.maxEndpoints,
			PruneConsumers: l.pg != nil, Source: events.EdgeSource(l.instance), Logger: logger,
		})
		if err != nil {
			return nil, err
		}
		w := &lastingWebhooks{Manager: m}
		w.ctx, w.cancel = context.WithCancel(l.ctx)
		go w.run(l, logger)
		return w, nil
	})
	if err != nil {
		return nil, err
	}
	if s.allowPrivate {
		logger.Warn("webhooks may reach private and loopback addresses (allow_private): never in production")
	}
	return lw.Manager, nil
}
