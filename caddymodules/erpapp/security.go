package erpapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/promreg"
	"github.com/erpgate/erpgate/internal/secmon"
)

// Security configures the security monitor (internal/secmon): rules over
// the auth events on the event stream that emit `erp.security.<rule>`
// events and may block a client address at every edge instance
// (erp_ip_block refuses it), lock an account or make sure a reused refresh
// token's session family is revoked. Without a `security` block the
// monitor runs with the default rules, which are safe for the demo (see
// secmon.DefaultRules).
//
//	erp {
//		security {
//			rule password_guessing {
//				threshold         50   # failed logins per address in the window
//				account_threshold 20   # failed logins per account in the window
//				window            5m
//				severity          high
//				action            block_ip 15m
//				action            lock_account
//			}
//			rule credential_stuffing {
//				threshold 20           # distinct accounts per address
//				window    10m
//				action    none         # no action: only the event
//			}
//			rule new_device {
//				off
//			}
//		}
//	}
//
// Rules: password_guessing, credential_stuffing, refresh_token_reuse,
// new_device, new_network, api_key_new_network. Actions: block_ip
// [duration] (default 15m; loopback is never blocked), lock_account
// (until an admin sends PATCH /api/v1/admin/users/{id} {"locked": false}),
// revoke_family (refresh_token_reuse only). A rule's settings replace the
// default's; `action none` removes the default actions.
type Security struct {
	// Off stops the monitor (no rule runs, also after a reload that turns
	// it off; blocks already made hold until they end). Default: false.
	Off bool `json:"off,omitempty"`
	// Rules by name, laid over the defaults.
	Rules map[string]*SecurityRule `json:"rules,omitempty"`
}

// SecurityRule is one rule's settings (zero fields keep the default).
type SecurityRule struct {
	Off              bool             `json:"off,omitempty"`
	Threshold        int              `json:"threshold,omitempty"`
	AccountThreshold int              `json:"account_threshold,omitempty"`
	Window           caddy.Duration   `json:"window,omitempty"`
	Severity         string           `json:"severity,omitempty"`
	Actions          []SecurityAction `json:"actions,omitempty"`
	// NoActions removes the default actions (`action none`).
	NoActions bool `json:"no_actions,omitempty"`
}

// SecurityAction is one action of a rule.
type SecurityAction struct {
	// Kind: block_ip, lock_account or revoke_family.
	Kind string `json:"kind"`
	// Duration of a block_ip. Default: 15m.
	Duration caddy.Duration `json:"duration,omitempty"`
}

func init() {
	subdirectives["security"] = parseSecurity
}

func parseSecurity(a *App, d *caddyfile.Dispenser) error {
	if a.Security != nil {
		return d.Err("security: given twice")
	}
	s := &Security{}
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "off":
			if d.NextArg() {
				return d.ArgErr()
			}
			s.Off = true
		case "rule":
			if !d.NextArg() {
				return d.ArgErr()
			}
			name := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			known := false
			for _, n := range secmon.RuleNames {
				known = known || n == name
			}
			if !known {
				return d.Errf("security: unknown rule %q (rules: %v)", name, secmon.RuleNames)
			}
			if s.Rules[name] != nil {
				return d.Errf("security: rule %s given twice", name)
			}
			r := &SecurityRule{}
			given := map[string]bool{}
			for rn := d.Nesting(); d.NextBlock(rn); {
				key := d.Val()
				if key != "action" && given[key] {
					return d.Errf("security: rule %s: %s given twice (duplicate)", name, key)
				}
				given[key] = true
				args := d.RemainingArgs()
				one := func() (string, error) {
					if len(args) != 1 {
						return "", d.ArgErr()
					}
					return args[0], nil
				}
				switch key {
				case "off":
					if len(args) != 0 {
						return d.ArgErr()
					}
					r.Off = true
				case "threshold", "account_threshold":
					v, err := one()
					if err != nil {
						return err
					}
					var n int
					if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
						return d.Errf("%s: expected a positive number", key)
					}
					if key == "threshold" {
						r.Threshold = n
					} else {
						r.AccountThreshold = n
					}
				case "window":
					v, err := one()
					if err != nil {
						return err
					}
					dur, err := caddy.ParseDuration(v)
					if err != nil || dur <= 0 {
						return d.Errf("window: expected a positive duration")
					}
					r.Window = caddy.Duration(dur)
				case "severity":
					v, err := one()
					if err != nil {
						return err
					}
					r.Severity = v
				case "action":
					if len(args) < 1 || len(args) > 2 {
						return d.ArgErr()
					}
					if args[0] == "none" {
						if len(args) != 1 {
							return d.ArgErr()
						}
						r.NoActions = true
						continue
					}
					act := SecurityAction{Kind: args[0]}
					if len(args) == 2 {
						if args[0] != secmon.ActionBlockIP {
							return d.Errf("action %s: takes no duration", args[0])
						}
						dur, err := caddy.ParseDuration(args[1])
						if err != nil || dur <= 0 {
							return d.Errf("action block_ip: expected a positive duration")
						}
						act.Duration = caddy.Duration(dur)
					}
					r.Actions = append(r.Actions, act)
				default:
					return d.Errf("security: rule %s: unknown subdirective %q", name, key)
				}
			}
			if s.Rules == nil {
				s.Rules = map[string]*SecurityRule{}
			}
			s.Rules[name] = r
		default:
			return d.Errf("security: unknown subdirective %q", d.Val())
		}
	}
	a.Security = s
	return nil
}

// rules are the monitor's rules: the defaults with the config's laid over.
func (s *Security) rules() (secmon.Rules, error) {
	over := secmon.Rules{}
	if s != nil {
		for name, r := range s.Rules {
			if r == nil {
				continue
			}
			sr := secmon.Rule{Off: r.Off, Threshold: r.Threshold, AccountThreshold: r.AccountThreshold,
				Window: time.Duration(r.Window), Severity: r.Severity}
			if r.NoActions && len(r.Actions) > 0 {
				return nil, fmt.Errorf("erp: security: rule %s: action none with other actions", name)
			}
			if r.NoActions {
				sr.Actions = []secmon.Action{}
			}
			for _, a := range r.Actions {
				sr.Actions = append(sr.Actions, secmon.Action{Kind: a.Kind, Duration: time.Duration(a.Duration)})
			}
			over[name] = sr
		}
	}
	rs, err := secmon.Merge(over)
	if err != nil {
		return nil, fmt.Errorf("erp: security: %w", err)
	}
	return rs, nil
}

// provisionSecurity checks the rules and registers the monitor's counters.
func (a *App) provisionSecurity(ctx caddy.Context) error {
	rs, err := a.Security.rules()
	if err != nil {
		return err
	}
	a.securityRules = rs
	return promreg.RegisterProcessWide(ctx.GetMetricsRegistry(), secmon.EventsTotal, secmon.ActionsTotal, secmon.BlockedRequestsTotal)
}

// Blocklist is the client addresses every edge instance refuses for a
// while (erp_ip_block checks it per request; the security monitor fills
// it), shared through Redis when configured.
func (l *Lasting) Blocklist() *secmon.Blocklist {
	l.secOnce.Do(func() {
		l.blocklist = secmon.NewBlocklist(l.rdb, l.prefix, nil, caddy.Log().Named("erp.security"))
	})
	return l.blocklist
}

// APIKeyNetworks is this instance's bounded memory of the networks each
// API key was used from (30 days; 100,000 pairs), so that erp_api_key
// publishes erp.auth.api_key.used only for a network new to the key.
func (l *Lasting) APIKeyNetworks() *secmon.NetSeen {
	l.netOnce.Do(func() { l.apiKeyNets = secmon.NewNetSeen(30*24*time.Hour, 100_000) })
	return l.apiKeyNets
}

// startSecurity starts, once per Lasting, the blocklist's Redis listener
// and the security monitor (when the event engine is ready); later calls
// (each config's Start) replace the rules.
func (l *Lasting) startSecurity(rs secmon.Rules, off bool, logger *zap.Logger) {
	bl := l.Blocklist()
	l.monOnce.Do(func() {
		go bl.Run(l.ctx)
		var st secmon.Store
		if l.rdb != nil {
			st = &secmon.Redis{Client: l.rdb, Prefix: l.prefix}
		} else {
			mem := secmon.NewMemory()
			st = mem
			go func() {
				t := time.NewTicker(time.Minute)
				defer t.Stop()
				for {
					select {
					case <-l.ctx.Done():
						return
					case now := <-t.C:
						mem.Prune(now)
					}
				}
			}()
		}
		l.monitor = &secmon.Monitor{Store: st, Blocklist: bl, Actor: lastingActor{l}, Source: events.EdgeSource(l.instance),
			Logger: logger.Named("security")}
		l.riskMon.Store(l.monitor)
	})
	if off { // a monitor already running (an earlier config) judges nothing from now on
		quiet := make(secmon.Rules, len(rs))
		for name, r := range rs {
			r.Off = true
			quiet[name] = r
		}
		l.monitor.SetRules(quiet)
		return
	}
	l.monitor.SetRules(rs)
	l.monRun.Do(func() {
		go func() {
			eng, err := l.EventsWait(l.ctx)
			if err != nil {
				return
			}
			l.monitor.Publisher = eng
			l.monitor.Run(l.ctx, eng)
		}()
	})
}

// lastingActor does the monitor's account actions through the auth service
// of this process (asked at use: it changes with reloads).
type lastingActor struct{ l *Lasting }

var errNoAuthServiceHere = errors.New("erp: security: no auth service in this process to act on accounts")

func (a lastingActor) LockAccount(ctx context.Context, userID, rule string) error {
	svc, err := a.l.AuthService()
	if err != nil {
		return errNoAuthServiceHere
	}
	return svc.LockAccount(ctx, userID, rule)
}

func (a lastingActor) UserCompanies(ctx context.Context, userID string) ([]string, error) {
	svc, err := a.l.AuthService()
	if err != nil {
		return nil, errNoAuthServiceHere
	}
	ms, err := svc.Store().ListMemberships(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Company.ID)
	}
	return out, nil
}

func (a lastingActor) RevokeFamily(ctx context.Context, userID, sessionID string) error {
	svc, err := a.l.AuthService()
	if err != nil {
		return errNoAuthServiceHere
	}
	return svc.RevokeFamily(ctx, userID, sessionID)
}

// Weights of the security monitor's risk signals for the auth service's
// logins (authsvc risk.go adds them to its own).
const (
	riskBlockedAddress = 100 // refused at any threshold
	riskFlaggedAddress = 40  // a rule's finding named the address in its window
	riskBlockedNetwork = 30  // another address of its /24 (/48) is blocked
)

// riskSignals is the security monitor's view of a login's client address
// (core.Deps.RiskSignals): blocked (blocked_address), named by a finding
// of password_guessing or credential_stuffing (flagged_address: this
// instance's findings), or in the network of a blocked address
// (blocked_network).
func (l *Lasting) riskSignals(_ context.Context, ip, _ string) (int, []string) {
	bl := l.Blocklist()
	if _, ok := bl.BlockedString(ip); ok {
		return riskBlockedAddress, []string{"blocked_address"}
	}
	score, signals := 0, []string(nil)
	if m := l.riskMon.Load(); m != nil {
		if _, ok := m.Flagged(ip); ok {
			score, signals = score+riskFlaggedAddress, append(signals, "flagged_address")
		}
	}
	if bl.BlockedNear(ip) {
		score, signals = score+riskBlockedNetwork, append(signals, "blocked_network")
	}
	return score, signals
}
