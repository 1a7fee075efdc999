package erpapp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/secmon"
)

// TestRiskSignals: the auth service's view of the security monitor — a
// blocked address, an address a finding named, another address of a
// blocked network — with their weights; nothing for any other address.
func TestRiskSignals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &Lasting{}
	if score, sig := l.riskSignals(ctx, "203.0.113.7", "u1"); score != 0 || sig != nil {
		t.Fatalf("nothing known: %d %v", score, sig)
	}
	if _, err := l.Blocklist().Block(ctx, netip.MustParseAddr("203.0.113.7"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if score, sig := l.riskSignals(ctx, "203.0.113.7", "u1"); score != riskBlockedAddress || !slices.Equal(sig, []string{"blocked_address"}) {
		t.Fatalf("blocked address: %d %v", score, sig)
	}
	if score, sig := l.riskSignals(ctx, "203.0.113.8", "u1"); score != riskBlockedNetwork || !slices.Equal(sig, []string{"blocked_network"}) {
		t.Fatalf("blocked network: %d %v", score, sig)
	}
	// A finding about an address (password guessing from it) flags it.
	rs, err := secmon.Merge(secmon.Rules{secmon.RulePasswordGuessing: {Threshold: 1, AccountThreshold: 1000, Window: time.Minute, Actions: []secmon.Action{}}})
	if err != nil {
		t.Fatal(err)
	}
	m := &secmon.Monitor{Store: secmon.NewMemory(), Blocklist: l.Blocklist()}
	m.SetRules(rs)
	l.riskMon.Store(m)
	ev, err := events.New(events.SourceAuthsvc, secmon.TypeLoginFailed, "", "", secmon.AuthData{IP: "203.0.113.8", Details: map[string]string{"email": "x@y.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if score, sig := l.riskSignals(ctx, "203.0.113.8", "u1"); score != riskFlaggedAddress+riskBlockedNetwork || !slices.Equal(sig, []string{"flagged_address", "blocked_network"}) {
		t.Fatalf("flagged address in a blocked network: %d %v", score, sig)
	}
	if score, _ := l.riskSignals(ctx, "198.51.100.1", "u1"); score != 0 {
		t.Fatalf("another network: %d", score)
	}
}
