package webhooks

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

func postgresStore(t *testing.T) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	store.ConfigurePool(cfg) // as the edge runs it: erpgate_app, under row-level security
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return NewPostgres(pool)
}

// TestStoreContract runs one suite on every Store: each method is scoped
// to a company, and another company's rows are not found.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, mk := range map[string]func(t *testing.T) Store{
		"memory":   func(*testing.T) Store { return NewMemory() },
		"postgres": func(t *testing.T) Store { return postgresStore(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storeContract(t, mk(t))
		})
	}
}

func record(company string, at time.Time) Record {
	return Record{Endpoint: Endpoint{ID: newID("wh_"), CompanyID: company, URL: "https://hooks.example/" + company,
		Events: []string{"erp.invoices.*", "erp.auth.*"}, Description: "d", Enabled: true, CreatedAt: at, UpdatedAt: at},
		Secret: []byte("sealed-1")}
}

func sameEndpoint(t *testing.T, got, want Record) {
	t.Helper()
	if got.ID != want.ID || got.CompanyID != want.CompanyID || got.URL != want.URL || !slices.Equal(got.Events, want.Events) ||
		got.Description != want.Description || got.Enabled != want.Enabled || got.DisabledReason != want.DisabledReason ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		(got.FailingSince == nil) != (want.FailingSince == nil) || got.FailingSince != nil && !got.FailingSince.Equal(*want.FailingSince) ||
		string(got.Secret) != string(want.Secret) || string(got.OldSecret) != string(want.OldSecret) ||
		(got.OldSecretExpires == nil) != (want.OldSecretExpires == nil) ||
		got.OldSecretExpires != nil && !got.OldSecretExpires.Equal(*want.OldSecretExpires) {
		t.Fatalf("endpoint\n got %+v\nwant %+v", got, want)
	}
}

func storeContract(t *testing.T, s Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	a1, a2, b1 := record("acme", now), record("acme", now.Add(time.Second)), record("globex", now)
	for _, r := range []Record{a1, a2, b1} {
		if err := s.CreateEndpoint(ctx, r, 2); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("limit per company", func(t *testing.T) {
		if err := s.CreateEndpoint(ctx, record("acme", now), 2); !errors.Is(err, ErrLimit) {
			t.Fatalf("third endpoint of acme: %v", err)
		}
	})
	t.Run("get and list", func(t *testing.T) {
		got, err := s.GetEndpoint(ctx, "acme", a1.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameEndpoint(t, got, a1)
		l, err := s.ListEndpoints(ctx, "acme")
		if err != nil || len(l) != 2 || l[0].ID != a1.ID || l[1].ID != a2.ID {
			t.Fatalf("list %v %v", l, err)
		}
		if l, err := s.ListEndpoints(ctx, "initech"); err != nil || l == nil || len(l) != 0 {
			t.Fatalf("a company without endpoints: %v %v", l, err)
		}
		all, err := s.AllEndpoints(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("all %d %v", len(all), err)
		}
	})
	t.Run("other company", func(t *testing.T) {
		if _, err := s.GetEndpoint(ctx, "globex", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("get: %v", err)
		}
		if _, err := s.UpdateEndpoint(ctx, "globex", a1.ID, func(r *Record) error { r.URL = "https://evil.example"; return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("update: %v", err)
		}
		if err := s.DeleteEndpoint(ctx, "globex", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete: %v", err)
		}
		d := DeliveryRecord{Delivery: Delivery{ID: newID("whd_"), EndpointID: a1.ID, EventID: "e", EventType: "erp.x", Status: StatusSucceeded, At: now}, CompanyID: "globex"}
		if _, err := s.AddDelivery(ctx, d); !errors.Is(err, ErrNotFound) {
			t.Errorf("add delivery: %v", err)
		}
		if _, err := s.Deliveries(ctx, "globex", a1.ID, 10, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("deliveries: %v", err)
		}
		got, _ := s.GetEndpoint(ctx, "acme", a1.ID)
		sameEndpoint(t, got, a1)
	})
	t.Run("update", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := s.UpdateEndpoint(ctx, "acme", a1.ID, func(r *Record) error { r.URL = "x"; return boom }); !errors.Is(err, boom) {
			t.Fatalf("fn's error: %v", err)
		}
		got, _ := s.GetEndpoint(ctx, "acme", a1.ID)
		sameEndpoint(t, got, a1)
		later := now.Add(time.Minute)
		exp := now.Add(24 * time.Hour)
		want := a1
		want.URL, want.Events, want.Description, want.Enabled, want.DisabledReason = "https://hooks.example/new", []string{"erp.*"}, "", false, ReasonFailing
		want.FailingSince, want.UpdatedAt = &now, later
		want.OldSecret, want.OldSecretExpires, want.Secret = []byte("sealed-1"), &exp, []byte("sealed-2")
		got, err := s.UpdateEndpoint(ctx, "acme", a1.ID, func(r *Record) error {
			id, company := r.ID, r.CompanyID
			*r = want
			r.ID, r.CompanyID = id, company
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sameEndpoint(t, got, want)
		got, _ = s.GetEndpoint(ctx, "acme", a1.ID)
		sameEndpoint(t, got, want)
		a1 = want
	})
	t.Run("deliveries", func(t *testing.T) {
		var ids []string
		for i, ev := range []string{"e1", "e1", "e2", "e1"} {
			next := now.Add(time.Minute)
			d := DeliveryRecord{Delivery: Delivery{ID: newID("whd_"), EndpointID: a1.ID, EventID: ev, EventType: "erp.invoices.created",
				Status: StatusFailed, HTTPStatus: 500, Error: "", DurationMS: int64(i), Response: "oops ✓", At: now, NextAttempt: &next},
				CompanyID: "acme", StreamSeq: uint64(10 + i)}
			n, err := s.AddDelivery(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if want := []int{1, 2, 1, 3}[i]; n != want {
				t.Fatalf("delivery %d: attempt %d, want %d", i, n, want)
			}
			ids = append(ids, d.ID)
		}
		page, err := s.Deliveries(ctx, "acme", a1.ID, 3, "")
		if err != nil || len(page) != 3 || page[0].ID != ids[3] || page[2].ID != ids[1] {
			t.Fatalf("first page %v %v", page, err)
		}
		if page[0].Attempt != 3 || page[0].HTTPStatus != 500 || page[0].Response != "oops ✓" || page[0].NextAttempt == nil ||
			!page[0].At.Equal(now) || page[0].EventType != "erp.invoices.created" || page[0].DurationMS != 3 {
			t.Fatalf("newest %+v", page[0])
		}
		page, err = s.Deliveries(ctx, "acme", a1.ID, 3, page[2].ID)
		if err != nil || len(page) != 1 || page[0].ID != ids[0] {
			t.Fatalf("second page %v %v", page, err)
		}
		d, err := s.GetDelivery(ctx, "acme", a1.ID, ids[2])
		if err != nil || d.StreamSeq != 12 || d.EventID != "e2" || d.CompanyID != "acme" {
			t.Fatalf("get %+v %v", d, err)
		}
		if _, err := s.GetDelivery(ctx, "globex", a1.ID, ids[2]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another company's delivery: %v", err)
		}
		if _, err := s.GetDelivery(ctx, "acme", a2.ID, ids[2]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another endpoint's delivery: %v", err)
		}
		if l, err := s.Deliveries(ctx, "acme", a2.ID, 10, ""); err != nil || len(l) != 0 {
			t.Fatalf("another endpoint's deliveries: %v %v", l, err)
		}
		old := DeliveryRecord{Delivery: Delivery{ID: newID("whd_"), EndpointID: a1.ID, EventID: "e0", EventType: "erp.x",
			Status: StatusSucceeded, At: now.Add(-48 * time.Hour)}, CompanyID: "acme"}
		if _, err := s.AddDelivery(ctx, old); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PruneDeliveries(ctx, now.Add(-time.Hour)); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
		if l, _ := s.Deliveries(ctx, "acme", a1.ID, 100, ""); len(l) != 4 {
			t.Fatalf("after pruning: %d", len(l))
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := s.DeleteEndpoint(ctx, "acme", a1.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetEndpoint(ctx, "acme", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
		if _, err := s.Deliveries(ctx, "acme", a1.ID, 10, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deliveries after delete: %v", err)
		}
		if err := s.DeleteEndpoint(ctx, "acme", a1.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if err := s.CreateEndpoint(ctx, record("acme", now), 2); err != nil {
			t.Fatalf("a slot is free again: %v", err)
		}
	})
}

func TestMemoryKeepsNewestDeliveries(t *testing.T) {
	t.Parallel()
	s := NewMemory()
	r := record("acme", time.Now())
	if err := s.CreateEndpoint(t.Context(), r, 0); err != nil {
		t.Fatal(err)
	}
	var last string
	for i := range 3 * MemoryMaxDeliveries {
		d := DeliveryRecord{Delivery: Delivery{ID: newID("whd_"), EndpointID: r.ID, EventID: "e" + itoa(i%7), Status: StatusFailed, At: time.Now()}, CompanyID: "acme"}
		if _, err := s.AddDelivery(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		last = d.ID
	}
	all, _ := s.Deliveries(t.Context(), "acme", r.ID, 100000, "")
	if len(all) < MemoryMaxDeliveries || len(all) > MemoryMaxDeliveries*5/4 || all[0].ID != last {
		t.Fatalf("%d kept, newest %s", len(all), all[0].ID)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatal("not newest first")
		}
	}
}
