package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

func (p *Postgres) PutMembership(ctx context.Context, m Membership, now time.Time, ev Event) ([]string, error) {
	if !validUUID(m.UserID) {
		return nil, fmt.Errorf("put membership: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, txSpec{scope: companyScope(m.CompanyID), ev: &ev}, func(t *tx) error {
		var old []string
		err := t.QueryRow(`SELECT roles FROM memberships WHERE user_id = $1 AND company_id = $2 FOR UPDATE`, m.UserID, m.CompanyID).Scan(&old)
		existed := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := t.Exec(`INSERT INTO memberships (user_id, company_id, roles, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, company_id) DO UPDATE SET roles = EXCLUDED.roles`,
			m.UserID, m.CompanyID, m.Roles, micro(m.CreatedAt)); err != nil {
			return err
		}
		if !existed || sameRoles(old, m.Roles) {
			return nil
		}
		ids, err = t.revokeSessions(sessionScope{userID: m.UserID, companyID: m.CompanyID}, now, reasonRolesChanged)
		return err
	})
	return ids, wrap("put membership", err)
}

func (p *Postgres) DeleteMembership(ctx context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error) {
	if !validUUID(userID) {
		return nil, fmt.Errorf("delete membership: %w", ErrNotFound)
	}
	ids := []string{}
	err := p.inTx(ctx, txSpec{scope: companyScope(companyID), ev: &ev}, func(t *tx) error {
		if err := affected(t.Exec(`DELETE FROM memberships WHERE user_id = $1 AND company_id = $2`, userID, companyID)); err != nil {
			return err
		}
		var err error
		ids, err = t.revokeSessions(sessionScope{userID: userID, companyID: companyID}, now, reasonMembershipRemoved)
		return err
	})
	return ids, wrap("delete membership", err)
}

func (p *Postgres) FindMemberships(ctx context.Context, f MembershipFilter, pg Page) ([]MembershipView, int64, error) {
	if f.UserID != "" && !validUUID(f.UserID) {
		return []MembershipView{}, 0, nil
	}
	const where = ` FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE ($1 = '' OR m.company_id = $1) AND ($2 = '' OR m.user_id::text = $2)`
	// A company's memberships are the company's; any other listing (a
	// user's, or every company's) is the platform admin's.
	sc := platformScope("admin: find memberships")
	if f.CompanyID != "" {
		sc = companyScope(f.CompanyID)
	}
	var total int64
	var out []MembershipView
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*)`+where, f.CompanyID, f.UserID)
	b.Queue(`SELECT m.user_id::text, m.company_id, m.roles, m.created_at, u.email`+where+`
		ORDER BY m.company_id, u.email LIMIT $3 OFFSET $4`, f.CompanyID, f.UserID, pg.Limit, pg.Offset)
	err := p.inTx(ctx, txSpec{scope: sc, first: b, oneTrip: true}, func(t *tx) error {
		if err := t.Row().Scan(&total); err != nil {
			return err
		}
		var err error
		out, err = collect(func(r pgx.Row) (MembershipView, error) {
			var v MembershipView
			err := r.Scan(&v.UserID, &v.CompanyID, &v.Roles, &v.CreatedAt, &v.Email)
			v.CreatedAt = v.CreatedAt.UTC()
			return v, err
		})(t.Rows())
		return err
	})
	if err != nil {
		return nil, 0, wrap("find memberships", err)
	}
	return out, total, nil
}

func (p *Postgres) GetAccess(ctx context.Context, userID, companyID string) (Access, error) {
	if !validUUID(userID) {
		return Access{}, fmt.Errorf("get access: %w", ErrNotFound)
	}
	a := Access{UserID: userID}
	err := p.read(ctx, companyScope(companyID), func(t *tx) error {
		return t.Row().Scan(&a.UserDisabled, &a.Company.ID, &a.Company.Name, &a.Company.Plan, &a.Company.Disabled, &a.Company.CreatedAt, &a.Roles)
	}, `SELECT u.disabled, c.id, c.name, c.plan, c.disabled, c.created_at, m.roles
		FROM memberships m JOIN users u ON u.id = m.user_id JOIN companies c ON c.id = m.company_id
		WHERE m.user_id = $1 AND m.company_id = $2`, userID, companyID)
	a.Company.CreatedAt = a.Company.CreatedAt.UTC()
	return a, wrap("get access", err)
}

func (p *Postgres) ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error) {
	if !validUUID(userID) {
		return []CompanyMembership{}, nil
	}
	out, err := readRows(ctx, p, userScope(userID), func(r pgx.Row) (CompanyMembership, error) {
		var cm CompanyMembership
		err := r.Scan(&cm.Company.ID, &cm.Company.Name, &cm.Company.Plan, &cm.Company.Disabled, &cm.Company.CreatedAt, &cm.Roles)
		cm.Company.CreatedAt = cm.Company.CreatedAt.UTC()
		return cm, err
	}, `SELECT c.id, c.name, c.plan, c.disabled, c.created_at, m.roles
		FROM memberships m JOIN companies c ON c.id = m.company_id WHERE m.user_id = $1 ORDER BY c.id`, userID)
	if err != nil {
		return nil, wrap("list memberships", err)
	}
	return out, nil
}
