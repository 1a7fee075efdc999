package revocation

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/httpt"
)

// refusalBound is the bound: a revoked token is refused at every
// instance within 5 s of Redis being back.
const refusalBound = 5 * time.Second

// TestLogoutDuringRedisOutage: Redis is killed (SIGKILL) twice.
//
// A short outage: a logout at A answers 200 (recorded in Postgres), takes
// effect at A at once, and is idempotent (a second logout answers 200
// again, not 401 — and drives the delivery again); Redis comes back empty,
// the relay publishes the revocation there (its mark is in Redis again) and
// both instances refuse the token within 5 s.
//
// A long outage: B, which can't hear a logout at A, stops trusting its view
// after revocation_staleness (5 s) and asks the store, so it refuses the
// token during the outage too, while other sessions keep working; after
// Redis is back every instance refuses it within 5 s.
func TestLogoutDuringRedisOutage(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	short, long, kept := login(t, s.a.URL), login(t, s.a.URL), login(t, s.b.URL)
	for _, sess := range []session{short, long, kept} {
		expectAccepted(t, s.a, sess, "before")
		expectAccepted(t, s.b, sess, "before")
	}

	// The short outage.
	s.redis.Stop()
	r := logout(t, s.a, short, false)
	env := r.Envelope(t)
	var out struct {
		Revoked []string `json:"revoked_sessions"`
	}
	if r.StatusCode != http.StatusOK || !env.Success || json.Unmarshal(env.Data, &out) != nil || len(out.Revoked) != 1 || out.Revoked[0] != short.sid {
		t.Fatalf("logout with Redis down: %d %s", r.StatusCode, r.Body)
	}
	refusedWithin(t, time.Second, short, s.a) // A's own edge heard it in process
	if r := logout(t, s.a, short, false); r.StatusCode != http.StatusOK {
		t.Fatalf("second logout with Redis down: %d %s", r.StatusCode, r.Body)
	}
	s.redis.Restart() // empty: no persistence
	took := refusedWithin(t, refusalBound, short, s.a, s.b)
	deadline := time.Now().Add(refusalBound)
	for !s.markInRedis(short.sid) {
		if time.Now().After(deadline) {
			t.Fatal("the revocation recorded during the outage was not published when Redis came back")
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("short outage: refused at A and B %s after Redis came back; revocation published", took.Round(time.Millisecond))
	expectAccepted(t, s.b, kept, "after the short outage")

	// The long outage.
	s.redis.Stop()
	if r := logout(t, s.a, long, false); r.StatusCode != http.StatusOK {
		t.Fatalf("logout with Redis down: %d %s", r.StatusCode, r.Body)
	}
	took = refusedWithin(t, 5*time.Second+refusalBound, long, s.a, s.b)
	t.Logf("long outage: refused at B after %s (past its staleness bound, from the store)", took.Round(time.Millisecond))
	expectAccepted(t, s.a, kept, "during the outage, past the staleness bound")
	expectAccepted(t, s.b, kept, "during the outage, past the staleness bound")
	s.redis.Restart()
	refusedWithin(t, refusalBound, long, s.a, s.b)
	refusedWithin(t, refusalBound, short, s.a, s.b)
	for deadline := time.Now().Add(refusalBound); !s.markInRedis(long.sid); time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second outage's revocation was not published")
		}
	}
	expectAccepted(t, s.a, kept, "after Redis came back")
	expectAccepted(t, s.b, kept, "after Redis came back")
	for _, sess := range []session{short, long} {
		if r := httpt.Do(t, "POST", s.b.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": sess.Refresh}), nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("refresh after the logout: %d %s", r.StatusCode, r.Body)
		}
	}
	for _, logs := range []string{s.a.Logs(), s.b.Logs()} {
		for _, secret := range []string{short.Access, short.Refresh, long.Access, long.Refresh} {
			if contains(logs, secret) {
				t.Fatal("a token reached the logs")
			}
		}
	}
}

// TestResyncRaceAfterCut: 20 trials on one stack. Each cuts B off from
// Redis (its connections refused), logs a session out at A (published to
// Redis while B can't hear it), and lets B reconnect — through a flaky
// network that refuses B's next connections after the subscription's, so
// the resync that follows the re-subscription fails at first and must be
// retried. B's staleness bound is 10 minutes: only the resync can tell it.
// Every trial's token is refused at B within 5 s.
func TestResyncRaceAfterCut(t *testing.T) {
	t.Parallel()
	const trials = 20
	bRedis := &refusingProxy{}
	s := startStack(t, stackOptions{staleness: "10m", bRedis: bRedis})
	sessions := make([]session, trials+1)
	for i := range sessions {
		sessions[i] = login(t, s.a.URL)
	}
	kept := sessions[trials]
	for i := range trials {
		expectAccepted(t, s.b, sessions[i], "before the cut")
	}
	var worst time.Duration
	for i := range trials {
		sess := sessions[i]
		bRedis.cut()
		if r := logout(t, s.a, sess, false); r.StatusCode != http.StatusOK {
			t.Fatalf("trial %d: logout: %d %s", i, r.StatusCode, r.Body)
		}
		for deadline := time.Now().Add(refusalBound); !s.markInRedis(sess.sid); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("trial %d: the logout was not published", i)
			}
		}
		bRedis.restoreFlaky(t, 10)
		took := refusedWithin(t, refusalBound, sess, s.b)
		worst = max(worst, took)
		expectAccepted(t, s.b, kept, "after a cut")
	}
	t.Logf("%d of %d trials refused at B within %s (slowest %s)", trials, trials, refusalBound, worst.Round(time.Millisecond))
	if !contains(s.b.Logs(), "revocation resync succeeded after retrying") {
		t.Fatal("no resync had to be retried: the flaky network did not bite")
	}
}

// TestLogoutWithNothingRecordable: with Postgres cut and Redis down, a
// logout can't be recorded anywhere: 503 SERVICE_UNAVAILABLE with
// Retry-After, nothing changed. After recovery the same logout completes,
// and every instance refuses the token within 5 s.
func TestLogoutWithNothingRecordable(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	sess := login(t, s.a.URL)
	expectAccepted(t, s.b, sess, "before")

	s.pg.Cut()
	s.redis.Stop()
	for _, all := range []bool{false, true} {
		r := logout(t, s.a, sess, all)
		env := r.Envelope(t)
		if r.StatusCode != http.StatusServiceUnavailable || env.Code() != contract.CodeServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("logout (all=%v) with nothing recordable: %d %q %s", all, r.StatusCode, r.Header.Get("Retry-After"), r.Body)
		}
	}
	s.pg.Restore()
	s.redis.Restart()
	var r *httpt.Response
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		// the pool reconnects on its own; until then the answer says retry
		r = logout(t, s.a, sess, false)
		if r.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
	}
	if r.StatusCode != http.StatusOK {
		t.Fatalf("logout retried after recovery: %d %s", r.StatusCode, r.Body)
	}
	took := refusedWithin(t, refusalBound, sess, s.a, s.b)
	t.Logf("retried logout refused everywhere after %s", took.Round(time.Millisecond))
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }
