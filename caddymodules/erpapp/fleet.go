package erpapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/fleet"
)

// The fleet: with Postgres, runtime changes made through one instance's
// Caddy admin API to the erp app's `backends` and `quota_overrides` reach
// every instance, survive restarts, and a new instance starts with them;
// company cells (cells.go) travel the same way.
//
//   - A config load whose backends or quota overrides differ from the
//     previous config's is a local change: in Start the changed entries
//     are stored (internal/fleet, table erp_runtime_entries, each with a
//     fleet-wide revision) and announced on the Redis channel
//     <prefix>fleet (with this instance as origin, so it ignores its own).
//   - Every instance hears the announcement (or, without Redis or after a
//     lost message, re-reads the table every fleet_poll), and loads a new
//     config of its own with the entries overlaid: a graceful reload, as
//     an admin API change is (Caddy's config access with If-Match, so an
//     admin's change made a moment before is never overwritten).
//   - Precedence: a stored entry wins over the same backend or company in
//     a config loaded from a file (a start, `caddy reload`); the config
//     then carries `runtime_revision`, and changes to it through the admin
//     API's paths are local changes again. A config from a file can still
//     add or change entries the fleet has not stored; deleting a backend
//     through the admin API stores the deletion, so the file's copy does
//     not come back at the next start.
//
// The sync's own loads change only what the fleet already stores with the
// same value, so they are never mistaken for local changes: no loops.

func init() {
	subdirectives["fleet_poll"] = parseFleetPoll
}

// defaultFleetPoll is how often the stored entries and cells are re-read.
const defaultFleetPoll = 5 * time.Second

// fleetMessage is an announcement on the fleet channel.
type fleetMessage struct {
	Origin   string `json:"origin"`
	Kind     string `json:"kind"` // msgRuntime or msgCell
	Revision int64  `json:"revision,omitempty"`
	Company  string `json:"company,omitempty"`
	Cell     string `json:"cell,omitempty"`
}

const (
	msgRuntime = "runtime"
	msgCell    = "cell"
)

// fleetSync is a Lasting's part of the fleet: what it knows of the stored
// entries and the background work that applies them.
type fleetSync struct {
	known fleet.Known

	mu     sync.Mutex
	loaded bool       // the stored entries and cells were read once
	last   fleet.Maps // backends and overrides of the newest started config

	schemaMu sync.Mutex
	schemaOK bool // the migrations were applied

	runOnce sync.Once
	kick    chan struct{} // a reconcile is wanted (buffered 1)
}

// provisionFleet overlays the stored entries onto a config loaded from a
// file, before the backends and overrides are provisioned. On the first
// config of a process it reads the stored entries and the company cells
// (bounded by the app's timeout): a new instance starts with them.
func (a *App) provisionFleet() error {
	if a.FleetPoll < 0 {
		return errors.New("erp: fleet_poll must not be negative")
	}
	l := a.lasting
	if l.pg == nil {
		return nil
	}
	cur, err := a.configMaps()
	if err != nil {
		return err
	}
	f := &l.fleet
	f.load(l, time.Duration(a.Timeout), a.logger)
	f.mu.Lock()
	first := f.last == nil
	f.mu.Unlock()
	a.fleetMaps, a.fleetBase = cur, a.RuntimeRevision == nil || first
	if !a.fleetBase {
		return nil
	}
	eff := fleet.Overlay(cur, f.known.Since(0))
	if eff.Equal(cur) {
		return nil
	}
	if err := a.setConfigMaps(cur, eff); err != nil {
		return err
	}
	a.fleetMaps = eff
	return nil
}

// startFleet finds and stores this config's local changes, announces
// them, starts the background sync once, and asks it to bring the running
// config in line with the fleet.
func (a *App) startFleet() {
	l := a.lasting
	if l.pg == nil {
		return
	}
	f := &l.fleet
	f.start(l, time.Duration(a.FleetPoll), a.logger)
	f.mu.Lock()
	prev := f.last
	f.last = a.fleetMaps
	f.mu.Unlock()
	if prev != nil {
		if local := fleet.Changes(prev, a.fleetMaps, f.known.Snapshot(), a.fleetBase); len(local) > 0 {
			a.storeLocal(local)
		}
	}
	f.wake()
}

// storeLocal stores and announces local changes, bounded by the timeout.
func (a *App) storeLocal(local []fleet.Entry) {
	l := a.lasting
	ctx, cancel := context.WithTimeout(l.ctx, 2*time.Duration(a.Timeout))
	defer cancel()
	if err := l.fleet.schema(ctx, l); err != nil {
		a.logger.Error("runtime changes not stored: the fleet's schema is missing", zap.Error(err))
		return
	}
	stored, err := fleet.NewPostgres(l.pg).Put(ctx, local, l.instance)
	if err != nil {
		a.logger.Error("runtime changes not stored: other instances will not apply them", zap.Error(err))
		return
	}
	l.fleet.known.Merge(stored)
	rev := stored[len(stored)-1].Revision
	keys := make([]string, len(stored))
	for i, e := range stored {
		keys[i] = e.Key.String()
	}
	a.logger.Info("runtime changes stored for the fleet", zap.Strings("entries", keys), zap.Int64("revision", rev))
	if err := l.announce(ctx, fleetMessage{Kind: msgRuntime, Revision: rev}); err != nil {
		a.logger.Warn("announcing runtime changes failed; other instances apply them at their next poll", zap.Error(err))
	}
}

// configMaps are the config's backends and overrides as fleet entries.
func (a *App) configMaps() (fleet.Maps, error) {
	b, err := rawEach(a.Backends)
	if err != nil {
		return nil, err
	}
	o, err := rawEach(a.QuotaOverrides)
	if err != nil {
		return nil, err
	}
	return fleet.MapsOf(b, o)
}

func rawEach[V any](m map[string]V) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("erp: %s: %w", k, err)
		}
		out[k] = raw
	}
	return out, nil
}

// setConfigMaps makes the app's backends and overrides those of eff,
// decoding the entries that differ from cur.
func (a *App) setConfigMaps(cur, eff fleet.Maps) error {
	for k := range cur {
		if _, ok := eff[k]; !ok {
			switch k.Kind {
			case fleet.KindBackend:
				delete(a.Backends, k.Name)
			case fleet.KindQuotaOverride:
				delete(a.QuotaOverrides, k.Name)
			}
		}
	}
	for k, v := range eff {
		if string(cur[k]) == string(v) {
			continue
		}
		switch k.Kind {
		case fleet.KindBackend:
			b := new(Backend)
			if err := json.Unmarshal(v, b); err != nil {
				return fmt.Errorf("erp: stored backend %q: %w", k.Name, err)
			}
			if a.Backends == nil {
				a.Backends = map[string]*Backend{}
			}
			a.Backends[k.Name] = b
		case fleet.KindQuotaOverride:
			o := new(QuotaOverride)
			if err := json.Unmarshal(v, o); err != nil {
				return fmt.Errorf("erp: stored quota override %q: %w", k.Name, err)
			}
			if a.QuotaOverrides == nil {
				a.QuotaOverrides = map[string]*QuotaOverride{}
			}
			a.QuotaOverrides[k.Name] = o
		}
	}
	return nil
}

// load reads the stored entries and the company cells once (until it
// succeeds); the poll reads them again later anyway.
func (f *fleetSync) load(l *Lasting, timeout time.Duration, logger *zap.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loaded {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	entries, err := fleet.NewPostgres(l.pg).Since(ctx, 0)
	if err != nil {
		logger.Warn("the fleet's runtime changes were not read; the config's own serve until the next poll", zap.Error(err))
		return
	}
	f.known.Merge(entries)
	if cells, err := store.NewPostgres(l.pg).CompanyCells(ctx); err == nil {
		l.cells.Replace(cells)
	}
	f.loaded = true
}

// schema applies the migrations once (the auth service applies them too;
// each applies once).
func (f *fleetSync) schema(ctx context.Context, l *Lasting) error {
	f.schemaMu.Lock()
	defer f.schemaMu.Unlock()
	if f.schemaOK {
		return nil
	}
	if _, err := store.Migrate(ctx, l.pg); err != nil {
		return err // tried again next time
	}
	f.schemaOK = true
	return nil
}

func (f *fleetSync) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// start runs the background sync once per Lasting: announcements from
// Redis, a poll of Postgres, and the reconciling of the running config.
func (f *fleetSync) start(l *Lasting, poll time.Duration, logger *zap.Logger) {
	if poll <= 0 {
		poll = defaultFleetPoll
	}
	f.runOnce.Do(func() {
		f.kick = make(chan struct{}, 1)
		go f.run(l, poll, logger.Named("fleet"))
	})
}

func (f *fleetSync) run(l *Lasting, poll time.Duration, logger *zap.Logger) {
	ctx := l.ctx
	var msgs <-chan *redisMessage
	if l.rdb != nil {
		msgs = subscribeFleet(ctx, l, logger)
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			var msg fleetMessage
			if json.Unmarshal([]byte(m.Payload), &msg) != nil || msg.Origin == l.instance {
				continue
			}
			switch msg.Kind {
			case msgCell:
				l.cells.Set(msg.Company, msg.Cell)
				logger.Info("company cell changed by another instance", zap.String("company_id", msg.Company), zap.String("cell", msg.Cell), zap.String("origin", msg.Origin))
			case msgRuntime:
				if msg.Revision > f.known.Revision() && f.pull(ctx, l, f.known.Revision(), logger) {
					f.reconcile(logger)
				}
			}
		case <-f.kick:
			f.reconcile(logger)
		case <-tick.C:
			// everything again: a change committed out of revision order is not missed
			changed := f.pull(ctx, l, 0, logger)
			f.pollCells(ctx, l, logger)
			if changed {
				f.reconcile(logger)
			}
		}
	}
}

// pull reads the stored entries above rev and reports whether any was new.
func (f *fleetSync) pull(ctx context.Context, l *Lasting, rev int64, logger *zap.Logger) bool {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	entries, err := fleet.NewPostgres(l.pg).Since(c, rev)
	if err != nil {
		logger.Debug("reading the fleet's runtime changes failed", zap.Error(err))
		return false
	}
	f.mu.Lock()
	f.loaded = true
	f.mu.Unlock()
	return len(f.known.Merge(entries)) > 0
}

func (f *fleetSync) pollCells(ctx context.Context, l *Lasting, logger *zap.Logger) {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cells, err := store.NewPostgres(l.pg).CompanyCells(c)
	if err != nil {
		logger.Debug("reading company cells failed", zap.Error(err))
		return
	}
	if l.cells.Replace(cells) {
		logger.Info("company cells reloaded", zap.Int("companies", len(cells)))
	}
}

const erpConfigPath = "/config/apps/erp"

// reconcile loads a config with the fleet's entries overlaid when the
// running one lacks them: all of them when the running config came from a
// file, those above its runtime_revision otherwise.
func (f *fleetSync) reconcile(logger *zap.Logger) {
	known := f.known.Revision()
	if known == 0 {
		return // nothing stored: nothing to apply
	}
	for range 5 {
		raw, etag, err := readConfigPath(erpConfigPath)
		if err != nil {
			logger.Debug("reading the running config failed", zap.Error(err))
			return
		}
		var app map[string]json.RawMessage
		if err := json.Unmarshal(raw, &app); err != nil || app == nil {
			return
		}
		var backends, overrides map[string]json.RawMessage
		var rev *int64
		if err := errors.Join(unmarshalIf(app["backends"], &backends), unmarshalIf(app["quota_overrides"], &overrides),
			unmarshalIf(app["runtime_revision"], &rev)); err != nil {
			logger.Error("the running erp config is not what the fleet expects", zap.Error(err))
			return
		}
		cur, err := fleet.MapsOf(backends, overrides)
		if err != nil {
			return
		}
		since := int64(0)
		if rev != nil {
			since = *rev
		}
		want := fleet.Overlay(cur, f.known.Since(since))
		if rev != nil && want.Equal(cur) {
			return
		}
		b, o := want.Split()
		setOrDrop(app, "backends", b)
		setOrDrop(app, "quota_overrides", o)
		app["runtime_revision"], _ = json.Marshal(known)
		body, err := json.Marshal(app)
		if err != nil {
			return
		}
		err = replaceConfigPath(erpConfigPath, body, etag)
		var apiErr caddy.APIError
		if errors.As(err, &apiErr) && apiErr.HTTPStatus == http.StatusPreconditionFailed {
			continue // an admin changed the config meanwhile: read it again
		}
		if err != nil {
			logger.Error("applying the fleet's runtime changes failed", zap.Error(err))
			return
		}
		logger.Info("the fleet's runtime changes applied", zap.Int64("revision", known))
		return
	}
}

func unmarshalIf(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func setOrDrop(app map[string]json.RawMessage, key string, m map[string]json.RawMessage) {
	if len(m) == 0 {
		delete(app, key)
		return
	}
	app[key], _ = json.Marshal(m)
}

// announce publishes msg on the fleet channel (nothing without Redis).
func (l *Lasting) announce(ctx context.Context, msg fleetMessage) error {
	if l.rdb == nil {
		return nil
	}
	msg.Origin = l.instance
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return l.rdb.Publish(c, l.prefix+contract.RedisChannelFleet, b).Err()
}

// parseFleetPoll parses `fleet_poll <duration>`.
func parseFleetPoll(a *App, d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	v, err := caddy.ParseDuration(d.Val())
	if err != nil || v <= 0 {
		return d.Errf("fleet_poll: a positive duration is required")
	}
	a.FleetPoll = caddy.Duration(v)
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}
