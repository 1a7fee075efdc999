package secmon_test

import (
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/secmon"
)

// TestRiskSignals: what the auth service's risk scoring asks the monitor —
// an address a rule's finding named recently (Flagged), another address of
// a blocked address's network (BlockedNear) — holds for the finding's
// window and the block's duration, and names nothing else.
func TestRiskSignals(t *testing.T) {
	fx := newFixture(t, secmon.NewMemory(), secmon.Rules{secmon.RulePasswordGuessing: {Threshold: 2, AccountThreshold: 1000, Window: 2 * time.Hour}})
	if _, ok := fx.m.Flagged("203.0.113.7"); ok {
		t.Fatal("flagged before any finding")
	}
	for range 2 {
		fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "u@x.test", "203.0.113.7"))
	}
	if rule, ok := fx.m.Flagged("203.0.113.7"); !ok || rule != secmon.RulePasswordGuessing {
		t.Fatalf("Flagged = %q, %v", rule, ok)
	}
	if _, ok := fx.m.Flagged("203.0.113.8"); ok {
		t.Fatal("another address flagged")
	}
	if _, ok := fx.m.Flagged("not an address"); ok {
		t.Fatal("garbage flagged")
	}
	bl := fx.m.Blocklist
	if !bl.BlockedNear("203.0.113.99") || !bl.BlockedNear("::ffff:203.0.113.99") {
		t.Fatal("an address of the blocked /24 is not near the block")
	}
	if bl.BlockedNear("203.0.113.7") { // itself: Blocked says so, not BlockedNear
		t.Fatal("the blocked address is near itself")
	}
	if bl.BlockedNear("203.0.114.1") || bl.BlockedNear("") || bl.BlockedNear("x") {
		t.Fatal("another network is near the block")
	}
	fx.clock.Add(16 * time.Minute) // the default block (15m) ended; the finding's window (2h) did not
	if bl.BlockedNear("203.0.113.99") {
		t.Fatal("near an ended block")
	}
	if _, ok := fx.m.Flagged("203.0.113.7"); !ok {
		t.Fatal("the flag ended before the rule's window")
	}
	fx.clock.Add(2 * time.Hour)
	if _, ok := fx.m.Flagged("203.0.113.7"); ok {
		t.Fatal("the flag outlived the rule's window")
	}
}
