package store

import (
	"context"
	"time"
)

// Company is a tenant. Its ID is a slug (`acme`), which is also the `cid`
// claim and the key the ERP backends use.
type Company struct {
	ID        string
	Name      string
	Plan      string
	Disabled  bool // a disabled company's sessions end and its API keys stop working
	CreatedAt time.Time
}

// CompanyUpdate changes the fields that are set.
type CompanyUpdate struct {
	Name     *string
	Plan     *string
	Disabled *bool
}

// CompanyStore keeps the tenants.
type CompanyStore interface {
	CreateCompany(ctx context.Context, c Company, ev Event) error
	GetCompany(ctx context.Context, id string) (Company, error)
	// UpdateCompany changes a company; disabling it revokes every session
	// bound to it (their ids are returned).
	UpdateCompany(ctx context.Context, id string, upd CompanyUpdate, now time.Time, ev Event) (Company, []string, error)
	// ListCompanies lists companies by id, with the total count.
	ListCompanies(ctx context.Context, p Page) ([]Company, int64, error)
}
