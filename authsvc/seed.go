package authsvc

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/loginname"
	"github.com/erpgate/erpgate/authsvc/store"
)

// DemoPassword is the password of every demo user. Demo mode is never for production.
const DemoPassword = "erpgate-demo"

// demo data (DESIGN.md, "Stores and the embedded default").
var (
	demoCompanies = []store.Company{
		{ID: "acme", Name: "Acme Corp", Plan: "standard"},
		{ID: "globex", Name: "Globex", Plan: "free"},
	}
	demoUsers = []struct {
		email, name string
		admin       bool
		roles       map[string][]string
	}{
		{"alice@acme.test", "Alice", false, map[string][]string{"acme": {RoleAdmin}, "globex": {RoleViewer}}},
		{"bob@globex.test", "Bob", false, map[string][]string{"globex": {RoleAccountant}}},
		{"root@erpgate.local", "Platform admin", true, nil},
	}
)

// seedDemo creates the demo companies, users and memberships that are
// missing. Existing ones are left alone (a changed password stays changed).
func (s *Service) seedDemo(ctx context.Context) error {
	now := s.clock.Now()
	for _, c := range demoCompanies {
		c.CreatedAt = now
		ev := s.systemEvent(store.EventCompanyCreated, c.ID, map[string]string{"source": "demo_seed"})
		ev.CompanyID = c.ID
		if err := s.store.CreateCompany(ctx, c, ev); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	for _, du := range demoUsers {
		name, err := loginname.Normalize(du.email)
		if err != nil {
			return err
		}
		u, err := s.store.GetUserByEmail(ctx, name.Email)
		if errors.Is(err, store.ErrNotFound) {
			h, herr := s.hash(ctx, DemoPassword)
			if herr != nil {
				return herr
			}
			u = store.User{ID: uuid.NewString(), Email: name.Email, Name: du.name, PasswordHash: h, PlatformAdmin: du.admin,
				PasswordChangedAt: now, CreatedAt: now}
			err = s.store.CreateUser(ctx, u, s.systemEvent(store.EventUserCreated, u.ID, map[string]string{"source": "demo_seed"}))
			if errors.Is(err, store.ErrConflict) { // another instance seeded it meanwhile, or a look-alike holds the name
				u, err = s.store.GetUserByEmail(ctx, name.Email)
				if errors.Is(err, store.ErrNotFound) {
					s.logger.Warn("demo user not seeded: an account with a look-alike name exists", zap.String("email", name.Email))
					continue
				}
			}
		}
		if err != nil {
			return err
		}
		for cid, roles := range du.roles {
			if _, err := s.store.GetAccess(ctx, u.ID, cid); err == nil {
				continue
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			ev := s.systemEvent(store.EventMembershipSet, u.ID, map[string]string{"source": "demo_seed", "roles": strings.Join(roles, " ")})
			ev.CompanyID = cid
			if _, err := s.store.PutMembership(ctx, store.Membership{UserID: u.ID, CompanyID: cid, Roles: roles, CreatedAt: now}, now, ev); err != nil {
				return err
			}
		}
	}
	s.logger.Warn("demo mode: demo companies (acme, globex) and users (alice@acme.test, bob@globex.test, root@erpgate.local) are seeded with the published demo password")
	return nil
}
