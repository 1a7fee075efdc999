package store_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// The events outbox (issue 15): every audit record a store keeps enters it
// with the change, and relays publish it, each record once per successful
// relay, disjoint between concurrent relays.

func TestMemoryEventOutbox(t *testing.T) {
	t.Parallel()
	runEventOutbox(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestPostgresEventOutbox(t *testing.T) {
	t.Parallel()
	runEventOutbox(t, func(t *testing.T) store.Store {
		pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := store.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
		return store.NewPostgres(pool)
	})
}

// drain relays everything and returns the records' seqs in publish order.
func drain(t *testing.T, s store.Store, limit int) []store.Event {
	t.Helper()
	var all []store.Event
	for {
		claimed, n, err := s.RelayEvents(context.Background(), limit, func(evs []store.Event) (int, error) {
			all = append(all, evs...)
			return len(evs), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if claimed != n {
			t.Fatalf("claimed %d, published %d, want equal", claimed, n)
		}
		if claimed == 0 {
			return all
		}
	}
}

func backlog(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.EventBacklog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func seqsOf(evs []store.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func runEventOutbox(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("every record enters it with its change, and leaves once published", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		woken := make(chan struct{}, 100)
		nctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s.NotifyAppends(nctx, func() { woken <- struct{}{} })
		f := setup(t, s) // 2 companies, 2 users, 2 memberships: 6 records
		appendSome(t, s, 3)
		if n := backlog(t, s); n != 9 {
			t.Fatalf("backlog %d, want 9", n)
		}
		if len(woken) != 9 {
			t.Fatalf("NotifyAppends called %d times for 9 records", len(woken))
		}
		// A change that fails keeps no record and enqueues nothing.
		if err := s.CreateCompany(ctx, f.a, ev("dup")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate company: %v", err)
		}
		if n := backlog(t, s); n != 9 {
			t.Fatalf("backlog %d after a failed change, want 9", n)
		}
		got := drain(t, s, 4)
		trail, _, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(trail, func(a, b store.Event) int { return int(a.Seq - b.Seq) })
		if !slices.Equal(seqsOf(got), seqsOf(trail)) {
			t.Fatalf("published %v, the trail is %v", seqsOf(got), seqsOf(trail))
		}
		for i := range got { // the records as kept: hash, details, ids
			if !slices.Equal(got[i].Hash, trail[i].Hash) || got[i].Type != trail[i].Type || got[i].RequestID != trail[i].RequestID {
				t.Fatalf("record %d published as %+v, kept as %+v", got[i].Seq, got[i], trail[i])
			}
		}
		kept := 0 // appendSome's three records, with their address and details
		for _, e := range got {
			if e.Type == store.EventLoginFailed && e.IP == "192.0.2.5" && e.Details["reason"] == "bad_password" {
				kept++
			}
		}
		if kept != 3 {
			t.Fatalf("record details lost: %d of appendSome's 3 records published whole: %+v", kept, got)
		}
		if n := backlog(t, s); n != 0 {
			t.Fatalf("backlog %d after draining, want 0", n)
		}
		if again := drain(t, s, 4); len(again) != 0 {
			t.Fatalf("published again: %v", seqsOf(again))
		}
	})

	t.Run("a failed publish keeps what it did not publish, in order", func(t *testing.T) {
		s := open(t)
		appendSome(t, s, 5)
		boom := errors.New("nats down")
		var first []int64
		claimed, n, err := s.RelayEvents(context.Background(), 10, func(evs []store.Event) (int, error) {
			first = seqsOf(evs)
			return 2, boom
		})
		if !errors.Is(err, boom) || claimed != 5 || n != 2 {
			t.Fatalf("RelayEvents = %d, %d, %v; want 5, 2, the publish error", claimed, n, err)
		}
		if b := backlog(t, s); b != 3 {
			t.Fatalf("backlog %d, want 3", b)
		}
		// Nothing published: everything stays.
		if _, n, err := s.RelayEvents(context.Background(), 10, func([]store.Event) (int, error) { return 0, boom }); !errors.Is(err, boom) || n != 0 {
			t.Fatalf("a publish of none: %d, %v", n, err)
		}
		rest := drain(t, s, 10)
		if !slices.Equal(seqsOf(rest), first[2:]) {
			t.Fatalf("after the failure published %v, want %v", seqsOf(rest), first[2:])
		}
	})

	t.Run("concurrent relays claim disjoint records", func(t *testing.T) {
		s := open(t)
		appendSome(t, s, 5)
		ctx := context.Background()
		var outer, inner []int64
		_, _, err := s.RelayEvents(ctx, 3, func(evs []store.Event) (int, error) {
			outer = seqsOf(evs)
			// Another relay while this one holds its records.
			_, _, err := s.RelayEvents(ctx, 10, func(evs []store.Event) (int, error) {
				inner = seqsOf(evs)
				return len(evs), nil
			})
			return len(evs), err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(outer) != 3 || len(inner) != 2 {
			t.Fatalf("relays claimed %v and %v, want 3 and the other 2", outer, inner)
		}
		for _, seq := range inner {
			if slices.Contains(outer, seq) {
				t.Fatalf("record %d claimed by both relays (%v, %v)", seq, outer, inner)
			}
		}
		if b := backlog(t, s); b != 0 {
			t.Fatalf("backlog %d, want 0", b)
		}
	})
}

// TestMemoryEventOutboxBound: with nothing publishing, the in-memory outbox
// keeps the newest records up to its bound (dropping the oldest tenth when
// full) and counts the ones it dropped.
func TestMemoryEventOutboxBound(t *testing.T) {
	t.Parallel()
	m := store.NewMemory()
	const bound = 100_000
	for i := range bound + 3 {
		if err := m.AppendAudit(context.Background(), store.Event{Time: t0, Type: store.EventLoginFailed, RequestID: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := backlog(t, m); n != bound-bound/10+3 {
		t.Fatalf("backlog %d, want %d", n, bound-bound/10+3)
	}
	if d := m.EventsDropped(); d != bound/10 {
		t.Fatalf("dropped %d, want %d", d, bound/10)
	}
	var first int64
	if _, _, err := m.RelayEvents(context.Background(), 1, func(evs []store.Event) (int, error) { first = evs[0].Seq; return 0, nil }); err != nil {
		t.Fatal(err)
	}
	if first != bound/10+1 {
		t.Fatalf("oldest kept record %d, want %d", first, bound/10+1)
	}
}
