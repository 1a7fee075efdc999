package store

import (
	"context"
)

func (p *Postgres) SetCompanyCell(ctx context.Context, companyID, cell string, ev Event) (string, error) {
	var prev string
	err := p.inTx(ctx, txSpec{scope: companyScope(companyID), ev: &ev}, func(t *tx) error {
		// FOR UPDATE: the previous cell returned is the one this change replaced
		if err := t.QueryRow(`SELECT cell FROM companies WHERE id = $1 FOR UPDATE`, companyID).Scan(&prev); err != nil {
			return err
		}
		_, err := t.Exec(`UPDATE companies SET cell = $2 WHERE id = $1`, companyID, cell)
		return err
	})
	return prev, wrap("set company cell", err)
}

func (p *Postgres) CompanyCell(ctx context.Context, companyID string) (string, error) {
	var cell string
	err := p.inCompanyTx(ctx, companyID, func(t *tx) error {
		return t.QueryRow(`SELECT cell FROM companies WHERE id = $1`, companyID).Scan(&cell)
	})
	return cell, wrap("company cell", err)
}

// CompanyCells is a platform operation: every company's cell, for the
// edge's cell table.
func (p *Postgres) CompanyCells(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	err := p.inTx(ctx, txSpec{scope: platformScope("background: company cells")}, func(t *tx) error {
		rows, err := t.Query(`SELECT id, cell FROM companies WHERE cell <> ''`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, cell string
			if err := rows.Scan(&id, &cell); err != nil {
				return err
			}
			out[id] = cell
		}
		return rows.Err()
	})
	return out, wrap("company cells", err)
}
