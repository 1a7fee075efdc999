package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

const companyColumns = `id, name, plan, disabled, created_at`

func scanCompany(row pgx.Row) (Company, error) {
	var c Company
	err := row.Scan(&c.ID, &c.Name, &c.Plan, &c.Disabled, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

func (p *Postgres) CreateCompany(ctx context.Context, c Company, ev Event) error {
	err := p.execAudited(ctx, platformScope("admin: create company"), ev, `INSERT INTO companies (id, name, plan, disabled, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, c.Name, c.Plan, c.Disabled, micro(c.CreatedAt))
	return wrap("create company", err)
}

func (p *Postgres) GetCompany(ctx context.Context, id string) (Company, error) {
	c, err := readRow(ctx, p, companyScope(id), scanCompany, `SELECT `+companyColumns+` FROM companies WHERE id = $1`, id)
	return c, wrap("get company", err)
}

func (p *Postgres) UpdateCompany(ctx context.Context, id string, upd CompanyUpdate, now time.Time, ev Event) (Company, []string, error) {
	var c Company
	ids := []string{}
	err := p.inTx(ctx, txSpec{scope: companyScope(id), ev: &ev}, func(t *tx) error {
		var err error
		c, err = scanCompany(t.QueryRow(`UPDATE companies SET name = COALESCE($2, name), plan = COALESCE($3, plan),
			disabled = COALESCE($4, disabled) WHERE id = $1 RETURNING `+companyColumns, id, upd.Name, upd.Plan, upd.Disabled))
		if err != nil || !c.Disabled {
			return err
		}
		ids, err = t.revokeSessions(sessionScope{companyID: id}, now, reasonCompanyDisabled)
		return err
	})
	return c, ids, wrap("update company", err)
}

func (p *Postgres) ListCompanies(ctx context.Context, pg Page) ([]Company, int64, error) {
	return listPage(ctx, p, platformScope("admin: list companies"), "list companies", `companies`, companyColumns, "id", pg, scanCompany)
}
