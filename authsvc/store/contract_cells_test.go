package store_test

import (
	"context"
	"testing"

	"github.com/erpgate/erpgate/authsvc/store"
)

// runCellContract: a company's cell is set, read, listed and cleared; the
// other company's stays as it is; an unknown company is not found; each
// change is audited.
func cellEv(company string) store.Event {
	e := ev(store.EventCompanyCellChanged)
	e.CompanyID = company
	return e
}

func runCellContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("company cells", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		cell, err := s.CompanyCell(ctx, f.a.ID)
		must(t, err)
		if cell != "" {
			t.Fatalf("new company's cell = %q", cell)
		}
		prev, err := s.SetCompanyCell(ctx, f.a.ID, "eu", cellEv(f.a.ID))
		must(t, err)
		if prev != "" {
			t.Fatalf("previous = %q", prev)
		}
		prev, err = s.SetCompanyCell(ctx, f.a.ID, "us", cellEv(f.a.ID))
		must(t, err)
		if prev != "eu" {
			t.Fatalf("previous = %q, want eu", prev)
		}
		_, err = s.SetCompanyCell(ctx, "nope-"+f.a.ID, "us", cellEv(f.a.ID))
		wantErr(t, err, store.ErrNotFound)
		_, err = s.CompanyCell(ctx, "nope-"+f.a.ID)
		wantErr(t, err, store.ErrNotFound)
		if cell, err = s.CompanyCell(ctx, f.a.ID); err != nil || cell != "us" {
			t.Fatalf("cell = %q, %v", cell, err)
		}
		// the other company is untouched
		if cell, err = s.CompanyCell(ctx, f.b.ID); err != nil || cell != "" {
			t.Fatalf("other company's cell = %q, %v", cell, err)
		}
		all, err := s.CompanyCells(ctx)
		must(t, err)
		if all[f.a.ID] != "us" {
			t.Fatalf("cells = %v", all)
		}
		if _, ok := all[f.b.ID]; ok {
			t.Fatalf("a company without a cell is listed: %v", all)
		}
		prev, err = s.SetCompanyCell(ctx, f.a.ID, "", cellEv(f.a.ID))
		must(t, err)
		if prev != "us" {
			t.Fatalf("previous = %q", prev)
		}
		all, err = s.CompanyCells(ctx)
		must(t, err)
		if _, ok := all[f.a.ID]; ok {
			t.Fatalf("a cleared cell is listed: %v", all)
		}
		_, n, err := s.ListAudit(ctx, store.AuditFilter{CompanyID: f.a.ID, Types: []string{store.EventCompanyCellChanged}}, store.Page{Limit: 100})
		must(t, err)
		if n != 3 { // the three that changed something; the failed one appended nothing
			t.Fatalf("%d cell changes audited, want 3", n)
		}
	})
}
