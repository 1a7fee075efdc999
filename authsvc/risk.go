package authsvc

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"
)

// Risk-based step-up (issue #17). Every login whose first factor was
// proved gets a score, 0 to 100, the sum of its signals' weights:
//
//	new_device       20  no valid trusted device presented, and the device's
//	                     fingerprint is not among the user's recent completed logins
//	new_network      25  the client's /24 (IPv4) or /48 (IPv6) is not among them
//	recent_failures  10  1 or 2 failed logins of the account in the login window,
//	                 20  3 or 4,
//	                 35  5 or more
//	security_event   0…100  what the security monitor says of the address or
//	                     the user (Deps.RiskSignals: a blocked address, a blocked
//	                     network, …), as it scores it
//
// At Config.RiskStepUp (60) a second factor is asked even on a trusted
// device (a code by mail for a user who has none); at Config.RiskDeny (90)
// the login is refused. So: a known device on a known network is never
// stepped up by failures alone (at most 35: the user mistyping); a new
// network with 5 failures is (60), as is a new device on a new network
// after 3 (65); nothing but a security event reaches the refusal (at most
// 80 without one). A user with no remembered login (their first, or none
// in 90 days) gets no new_device or new_network: everything is new to
// them. Only completed logins are remembered (after the second factor
// when one was asked), the last 20 distinct (device, network) pairs per
// user: a thief who has the password but fails the second factor does not
// make his network known.
const (
	riskNewDevice  = 20
	riskNewNetwork = 25
	// loginHistoryKeep is how many (device, network) pairs of completed
	// logins are remembered per user; loginHistoryAge how long.
	loginHistoryKeep = 20
	loginHistoryAge  = 90 * 24 * time.Hour
)

// Risk signal names (the audit record's risk_signals).
const (
	SignalNewDevice      = "new_device"
	SignalNewNetwork     = "new_network"
	SignalRecentFailures = "recent_failures"
	SignalSecurityEvent  = "security_event"
)

// failureRisk is the weight of n failed logins of the account in the
// current login window.
func failureRisk(n int64) int {
	switch {
	case n <= 0:
		return 0
	case n <= 2:
		return 10
	case n <= 4:
		return 20
	}
	return 35
}

// assessRisk scores a login whose first factor was proved.
func (s *Service) assessRisk(c *call, a loginAttempt) (riskAssessment, error) {
	var r riskAssessment
	now := s.clock.Now()
	add := func(w int, signal string) {
		if w > 0 {
			r.Score += w
			r.Signals = append(r.Signals, signal)
		}
	}
	if a.deviceToken != "" {
		d, ok, err := s.trustedDevice(c, a.user.ID, a.deviceToken, now)
		if err != nil {
			return r, err
		}
		if ok {
			r.TrustedDevice = d.ID
			if err := s.store.TouchTrustedDevice(c.ctx, a.user.ID, d.ID, now); err != nil {
				s.logger.Warn("trusted device: last use not recorded", zap.String("device_id", d.ID), zap.Error(err))
			}
		}
	}
	history, err := s.store.RecentLogins(c.ctx, a.user.ID, now.Add(-loginHistoryAge))
	if err != nil {
		return r, err
	}
	if len(history) > 0 {
		fp, nw := deviceFingerprint(c.r.UserAgent()), clientNetwork(c.ip)
		knownDevice, knownNetwork := false, false
		for _, h := range history {
			knownDevice = knownDevice || h.Fingerprint == fp
			knownNetwork = knownNetwork || h.Network == nw
		}
		if r.TrustedDevice == "" && !knownDevice {
			add(riskNewDevice, SignalNewDevice)
		}
		if !knownNetwork {
			add(riskNewNetwork, SignalNewNetwork)
		}
	}
	// The account's attempt counter holds its failed logins in the window
	// (a success gives its attempt back before this runs).
	failures, err := s.counters.Count(c.ctx, attemptKey("account", a.user.Email))
	if err != nil {
		return r, err
	}
	add(failureRisk(failures), SignalRecentFailures)
	if s.dev.signals != nil {
		score, names := s.dev.signals(c.ctx, c.ip, a.user.ID)
		score = min(max(score, 0), 100)
		if score > 0 {
			r.Score += score
			if len(names) == 0 {
				names = []string{SignalSecurityEvent}
			}
			r.Signals = append(r.Signals, names...)
		}
	}
	r.Score = min(r.Score, 100)
	return r, nil
}

// deviceFingerprint is the hash of a normalised User-Agent: lower case,
// without digits (a browser's or system's update is the same device),
// spaces collapsed.
func deviceFingerprint(ua string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(ua) {
		switch {
		case unicode.IsDigit(r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:16])
}

// clientNetwork is the client address's /24 (IPv4) or /48 (IPv6), or the
// text as given when it is not an address.
func clientNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "?" + ip
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return "?" + ip
	}
	return p.String()
}
