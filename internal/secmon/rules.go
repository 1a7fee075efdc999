// Package secmon is erpgate's security monitor: rules over the auth events
// on the event stream (erp.auth.*), per account, per client address and
// across companies, that emit erp.security.<rule> events, count them in
// Prometheus and may act (block a client address at every edge instance,
// lock an account, make sure a session family is revoked).
//
// The monitor reads a durable JetStream consumer named "security" that the
// edge instances of a deployment share, so each auth event is judged once.
// Its sliding-window counters and seen-sets live in Redis when the
// deployment has one (exact across instances, keys under the key prefix),
// else in memory. The address blocklist (blocklist.go) is what every edge
// instance checks per request: an in-memory map, fed through Redis (a key
// with a TTL per blocked address and a pub/sub channel) or, without Redis,
// this process only.
//
// Owns: the rules, their windows and the blocklist. Must not import Caddy or
// caddymodules; the erp app runs it and gives it its actions.
package secmon

import (
	"errors"
	"fmt"
	"time"
)

// Rules: each is the last token of the event type it emits
// (erp.security.<rule>).
const (
	RulePasswordGuessing   = "password_guessing"   // N failed logins per account or per address in a window
	RuleCredentialStuffing = "credential_stuffing" // one address, many distinct accounts in a window
	RuleRefreshTokenReuse  = "refresh_token_reuse" // a rotated refresh token came back
	RuleNewDevice          = "new_device"          // a login from a user agent never seen for the user
	RuleNewNetwork         = "new_network"         // a login from a network (/24, /64) never seen for the user
	RuleAPIKeyNewNetwork   = "api_key_new_network" // an API key used from a network never seen for it
)

// RuleNames lists every rule.
var RuleNames = []string{RulePasswordGuessing, RuleCredentialStuffing, RuleRefreshTokenReuse,
	RuleNewDevice, RuleNewNetwork, RuleAPIKeyNewNetwork}

// Actions a rule may take.
const (
	ActionBlockIP      = "block_ip"      // every edge instance refuses the address for Duration
	ActionLockAccount  = "lock_account"  // the auth service refuses the account's logins until an admin unlocks it
	ActionRevokeFamily = "revoke_family" // the reused refresh token's session (its whole token family) is revoked
)

// Severities of security events.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Action is one thing a rule does when it fires.
type Action struct {
	// Kind: block_ip, lock_account or revoke_family.
	Kind string `json:"kind"`
	// Duration of a block_ip. Default: 15m.
	Duration time.Duration `json:"duration,omitempty"`
}

// Rule is one rule's settings.
type Rule struct {
	// Off turns the rule off.
	Off bool `json:"off,omitempty"`
	// Threshold: password_guessing's failed logins per address, and
	// credential_stuffing's distinct accounts per address, in Window.
	Threshold int `json:"threshold,omitempty"`
	// AccountThreshold: password_guessing's failed logins per account in
	// Window.
	AccountThreshold int `json:"account_threshold,omitempty"`
	// Window of the counting rules; for new_device, new_network and
	// api_key_new_network how long a device or network stays known.
	Window time.Duration `json:"window,omitempty"`
	// Severity of the events the rule emits.
	Severity string `json:"severity,omitempty"`
	// Actions taken when the rule fires. block_ip acts on a rule firing for
	// an address (password_guessing per address, credential_stuffing),
	// lock_account on one firing for an account (password_guessing per
	// account, refresh_token_reuse, new_device, new_network), revoke_family
	// on refresh_token_reuse.
	Actions []Action `json:"actions,omitempty"`
}

// Rules are the monitor's rules by name.
type Rules map[string]Rule

// DefaultRules are safe for the demo: an address is blocked (15 minutes)
// only after 50 failed logins in 5 minutes or failures on 20 distinct
// accounts in 10 minutes; no account is locked; a reused refresh token's
// family is revoked (the auth service already does; the monitor makes sure
// and records it).
func DefaultRules() Rules {
	return Rules{
		RulePasswordGuessing: {Threshold: 50, AccountThreshold: 20, Window: 5 * time.Minute, Severity: SeverityHigh,
			Actions: []Action{{Kind: ActionBlockIP, Duration: 15 * time.Minute}}},
		RuleCredentialStuffing: {Threshold: 20, Window: 10 * time.Minute, Severity: SeverityHigh,
			Actions: []Action{{Kind: ActionBlockIP, Duration: 15 * time.Minute}}},
		RuleRefreshTokenReuse: {Severity: SeverityHigh, Actions: []Action{{Kind: ActionRevokeFamily}}},
		RuleNewDevice:         {Window: 30 * 24 * time.Hour, Severity: SeverityLow},
		RuleNewNetwork:        {Window: 30 * 24 * time.Hour, Severity: SeverityMedium},
		RuleAPIKeyNewNetwork:  {Window: 30 * 24 * time.Hour, Severity: SeverityMedium},
	}
}

// Merge is the default rules with over's settings laid on top: a rule in
// over replaces the fields it sets (Actions when non-nil; an empty,
// non-nil list means none).
func Merge(over Rules) (Rules, error) {
	out := DefaultRules()
	for name, r := range over {
		d, ok := out[name]
		if !ok {
			return nil, fmt.Errorf("secmon: unknown rule %q", name)
		}
		if r.Off {
			d.Off = true
		}
		if r.Threshold != 0 {
			d.Threshold = r.Threshold
		}
		if r.AccountThreshold != 0 {
			d.AccountThreshold = r.AccountThreshold
		}
		if r.Window != 0 {
			d.Window = r.Window
		}
		if r.Severity != "" {
			d.Severity = r.Severity
		}
		if r.Actions != nil {
			d.Actions = r.Actions
		}
		out[name] = d
	}
	return out, out.Validate()
}

// Validate checks every rule's settings.
func (rs Rules) Validate() error {
	var errs []error
	for name, r := range rs {
		if !knownRule(name) {
			errs = append(errs, fmt.Errorf("secmon: unknown rule %q", name))
			continue
		}
		switch r.Severity {
		case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		default:
			errs = append(errs, fmt.Errorf("secmon: rule %s: severity must be low, medium, high or critical", name))
		}
		if r.Threshold < 0 || r.AccountThreshold < 0 || r.Threshold > 1_000_000 || r.AccountThreshold > 1_000_000 {
			errs = append(errs, fmt.Errorf("secmon: rule %s: thresholds must be 1 to 1000000", name))
		}
		if (name == RulePasswordGuessing || name == RuleCredentialStuffing) && (r.Threshold < 1 || r.Window <= 0) {
			errs = append(errs, fmt.Errorf("secmon: rule %s: needs a threshold and a window", name))
		}
		if name == RulePasswordGuessing && r.AccountThreshold < 1 {
			errs = append(errs, fmt.Errorf("secmon: rule %s: needs an account_threshold", name))
		}
		if r.Window < 0 || r.Window > 366*24*time.Hour {
			errs = append(errs, fmt.Errorf("secmon: rule %s: window must be positive and at most 366 days", name))
		}
		for _, a := range r.Actions {
			switch a.Kind {
			case ActionBlockIP:
				if a.Duration < 0 || a.Duration > 30*24*time.Hour {
					errs = append(errs, fmt.Errorf("secmon: rule %s: block_ip duration must be at most 30 days", name))
				}
			case ActionLockAccount:
				if name == RuleCredentialStuffing || name == RuleAPIKeyNewNetwork {
					errs = append(errs, fmt.Errorf("secmon: rule %s: lock_account needs an account rule", name))
				}
			case ActionRevokeFamily:
				if name != RuleRefreshTokenReuse {
					errs = append(errs, fmt.Errorf("secmon: rule %s: revoke_family only applies to refresh_token_reuse", name))
				}
			default:
				errs = append(errs, fmt.Errorf("secmon: rule %s: unknown action %q", name, a.Kind))
			}
		}
	}
	return errors.Join(errs...)
}

func knownRule(name string) bool {
	for _, n := range RuleNames {
		if n == name {
			return true
		}
	}
	return false
}

func (r Rule) action(kind string) (Action, bool) {
	for _, a := range r.Actions {
		if a.Kind == kind {
			if a.Kind == ActionBlockIP && a.Duration <= 0 {
				a.Duration = 15 * time.Minute
			}
			return a, true
		}
	}
	return Action{}, false
}
