package authsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// TestRunRetention: one run deletes the ended session and the audit
// records past the period, records the cut, and the trail still verifies
// with the service's key.
func TestRunRetention(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	e := newEnv(t, envOpts{cfg: authsvc.Config{Retention: authsvc.Retention{Off: true, Audit: 24 * time.Hour}},
		events: func() authsvc.EventPublisher { return rec }})
	ctx := context.Background()
	s := e.session(t, "alice@acme.test", "acme")
	if a := e.do(t, req{method: "POST", path: "/api/v1/auth/logout", bearer: s.str("access_token"), body: map[string]any{}}); a.Status != 200 {
		t.Fatalf("logout: %d %s", a.Status, a.Body)
	}
	// The relay publishes the records; unpublished ones would be kept.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, err := e.svc.Store().EventBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records still unpublished", n)
		}
	}
	_, before, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(48 * time.Hour)
	rep, err := e.svc.RunRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Purged.Sessions != 1 || rep.AuditRemoved != before {
		t.Fatalf("run = %+v, want 1 session and all %d records", rep, before)
	}
	recs, total, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || recs[0].Type != authsvc.EventAuditPruned {
		t.Fatalf("after the run: %+v", recs)
	}
	check, err := e.svc.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !check.OK || check.Checkpoints != 1 || check.Records != 1 {
		t.Fatalf("verify: %s", check)
	}
	if rep, err = e.svc.RunRetention(ctx); err != nil || rep.Purged.Total() != 0 || rep.AuditRemoved != 0 {
		t.Fatalf("a second run: %+v, %v", rep, err)
	}
}
