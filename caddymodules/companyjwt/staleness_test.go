package companyjwt

import (
	"context"
	"errors"
	"testing"
	"time"
)

// While the revocation set is not current (its Redis listener lost the
// subscription longer ago than Staleness), a token's session is checked
// with CheckSession, once per Staleness per token; without an answer the
// token is refused with ErrRevocationUnknown.
func TestVerifyStaleRevocationView(t *testing.T) {
	t.Parallel()
	type answer struct {
		revoked bool
		err     error
	}
	cases := []struct {
		name   string
		check  *answer // nil: no CheckSession
		stale  bool
		want   error
		checks int
	}{
		{name: "current view: no check", check: &answer{revoked: true}, want: nil, checks: 0},
		{name: "stale, session active", check: &answer{}, stale: true, want: nil, checks: 1},
		{name: "stale, session revoked", check: &answer{revoked: true}, stale: true, want: ErrRevoked, checks: 1},
		{name: "stale, store down (asked again each time)", check: &answer{err: errors.New("store down")}, stale: true, want: ErrRevocationUnknown, checks: 2},
		{name: "stale, no auth service", stale: true, want: ErrRevocationUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			calls := 0
			if tc.check != nil {
				f.v.CheckSession = func(_ context.Context, userID, sid string) (bool, error) {
					calls++
					if userID != "usr_1" || sid == "" {
						t.Errorf("checked %q %q", userID, sid)
					}
					return tc.check.revoked, tc.check.err
				}
			}
			if tc.stale {
				f.v.Revoked.Unconfirm()
			}
			tok := f.sign(t, goodClaims(), nil)
			for range 2 { // the second from the cache
				_, err := f.v.Verify(context.Background(), tok)
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			}
			if tc.want == ErrRevoked && !f.v.Revoked.Has("ses_1") {
				t.Fatal("a session found revoked is not remembered")
			}
			if tc.want != ErrRevoked && calls != tc.checks {
				t.Fatalf("%d checks, want %d", calls, tc.checks)
			}
			// Confirmed again: nothing is asked.
			f.v.Revoked.Confirm(testNow)
			before := calls
			if _, err := f.v.Verify(context.Background(), tok); tc.want != ErrRevoked && err != nil {
				t.Fatalf("current again: %v", err)
			}
			if calls != before {
				t.Fatal("a current view still asks the store")
			}
		})
	}
}

// A store answer holds for Staleness, then the session is asked again.
func TestVerifyStaleRecheckInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := testNow
	f.v.Now = func() time.Time { return now }
	calls := 0
	f.v.CheckSession = func(context.Context, string, string) (bool, error) { calls++; return false, nil }
	f.v.Revoked.Unconfirm()
	tok := f.sign(t, goodClaims(), nil)
	for _, step := range []struct {
		after time.Duration
		calls int
	}{{0, 1}, {f.v.Staleness - time.Second, 1}, {time.Second, 1}, {time.Millisecond, 2}} {
		now = now.Add(step.after)
		if _, err := f.v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		if calls != step.calls {
			t.Fatalf("after +%s: %d checks, want %d", step.after, calls, step.calls)
		}
	}
}
