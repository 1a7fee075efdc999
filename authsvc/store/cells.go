package store

import "context"

// CellStore keeps each company's cell: the name of the group of upstreams
// (a backend version's `cell NAME URL…`) that serves its requests. ”
// means the versions' default upstreams.
type CellStore interface {
	// SetCompanyCell assigns cell to the company ('' clears it) and
	// returns the cell it had; ErrNotFound when there is no such company.
	SetCompanyCell(ctx context.Context, companyID, cell string, ev Event) (previous string, err error)
	// CompanyCell is the company's cell ('' for none); ErrNotFound when
	// there is no such company.
	CompanyCell(ctx context.Context, companyID string) (string, error)
	// CompanyCells lists every company that has a cell, by company id.
	CompanyCells(ctx context.Context) (map[string]string, error)
}
