package authsvc

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHashGate: at most Concurrency run, Queue more wait; a full queue is
// refused at once, a wait that runs out (or a request deadline) is
// refused with the retry hint, a caller that went away gets its error.
func TestHashGate(t *testing.T) {
	t.Parallel()
	full := func(t *testing.T, g *hashGate) {
		for range g.limits.Concurrency {
			if _, err := g.enter(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, g *hashGate) context.Context
		want  error
	}{
		{name: "free slot", setup: func(t *testing.T, g *hashGate) context.Context { return t.Context() }},
		{name: "queue full", want: ErrHashBusy, setup: func(t *testing.T, g *hashGate) context.Context {
			full(t, g)
			for range g.limits.Queue { // waiters that hold their places until the test ends
				g.admitted <- struct{}{}
			}
			return t.Context()
		}},
		{name: "wait runs out", want: ErrHashBusy, setup: func(t *testing.T, g *hashGate) context.Context {
			full(t, g)
			g.limits.QueueWait = time.Millisecond
			return t.Context()
		}},
		{name: "request deadline", want: ErrHashBusy, setup: func(t *testing.T, g *hashGate) context.Context {
			full(t, g)
			ctx, cancel := context.WithDeadline(t.Context(), time.Now())
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "caller gone", want: context.Canceled, setup: func(t *testing.T, g *hashGate) context.Context {
			full(t, g)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := newHashGate(HashLimits{Concurrency: 2, Queue: 3, QueueWait: time.Hour})
			ctx := c.setup(t, g)
			release, err := g.enter(ctx)
			if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if err == nil {
				release()
				if len(g.slots) != 0 || len(g.admitted) != 0 {
					t.Fatalf("release left %d slots, %d admitted", len(g.slots), len(g.admitted))
				}
				return
			}
			var busy *HashBusyError
			if errors.Is(err, ErrHashBusy) && (!errors.As(err, &busy) || busy.RetryAfter < time.Second) {
				t.Fatalf("busy without a retry hint: %#v", err)
			}
			if c.name != "queue full" && len(g.admitted) != g.limits.Concurrency {
				t.Fatalf("a refused caller kept its place in the queue: %d admitted", len(g.admitted))
			}
		})
	}
}

// TestHashGateWaiterGetsFreedSlot: a queued caller runs when a slot frees.
func TestHashGateWaiterGetsFreedSlot(t *testing.T) {
	t.Parallel()
	g := newHashGate(HashLimits{Concurrency: 1, Queue: 1, QueueWait: time.Hour})
	release, err := g.enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := g.enter(t.Context())
		if err == nil {
			r()
		}
		done <- err
	}()
	for len(g.admitted) != 2 { // the waiter is queued
		time.Sleep(time.Millisecond)
	}
	if _, err := g.enter(t.Context()); !errors.Is(err, ErrHashBusy) {
		t.Fatalf("third caller: %v, want busy (one running, one waiting)", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

func TestArgon2ParamsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p     Argon2Params
		ok    bool
		below bool
	}{
		{DefaultArgon2Params, true, false},
		{Argon2Params{Memory: 47104, Time: 1, Threads: 1}, true, false},
		{Argon2Params{Memory: 7168, Time: 5, Threads: 1}, true, false},
		{Argon2Params{Memory: 7168, Time: 4, Threads: 1}, true, true},
		{Argon2Params{Memory: 64, Time: 1, Threads: 1}, true, true},
		{Argon2Params{Memory: 8, Time: 1, Threads: 2}, false, true},
		{Argon2Params{Memory: 300 << 10, Time: 1, Threads: 1}, false, false},
		{Argon2Params{Memory: 19456, Time: 0, Threads: 1}, false, false},
		{Argon2Params{Memory: 19456, Time: 2, Threads: 0}, false, false},
	} {
		if err := c.p.Validate(); (err == nil) != c.ok {
			t.Errorf("%v: Validate = %v", c.p, err)
		}
		if c.ok && c.p.BelowOWASP() != c.below {
			t.Errorf("%v: BelowOWASP = %v", c.p, !c.below)
		}
	}
}

// TestNeedsRehash: a hash with other parameters (or key length) is upgraded.
func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	a := NewArgon2idParams(2, 64, 1, 1)
	same, err := a.Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewArgon2idParams(1, 64, 1, 1).Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if a.NeedsRehash(same) || !a.NeedsRehash(other) || a.NeedsRehash("not a hash") {
		t.Fatal("NeedsRehash wrong")
	}
}
