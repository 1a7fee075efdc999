package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

func ssoConn(company string, domains ...string) store.SSOConnection {
	return store.SSOConnection{ID: uuid.NewString(), CompanyID: company, Kind: store.SSOKindOIDC, Name: "IdP", Domains: domains, JIT: true,
		DefaultRole: "viewer", Issuer: "https://idp.test", ClientID: "client", SealedClientSecret: []byte{1, 2, 3}, Scopes: []string{"openid", "email"},
		Claims: map[string]string{"email": "mail"}, CreatedAt: t0}
}

// runSSOContract: connections belong to their company, a domain to one
// connection; provisioning makes a user and a membership together.
func runSSOContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("connections", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		d := "sso-" + uuid.NewString()[:8] + ".test"
		c := ssoConn(f.a.ID, d, "www."+d)
		slices.Sort(c.Domains)
		must(t, s.CreateSSOConnection(ctx, c, ev(store.EventSSOConnectionCreated)))
		got, err := s.GetSSOConnection(ctx, f.a.ID, c.ID)
		must(t, err)
		if got.ID != c.ID || !slices.Equal(got.Domains, c.Domains) || string(got.SealedClientSecret) != string(c.SealedClientSecret) ||
			got.Claims["email"] != "mail" || !slices.Equal(got.Scopes, c.Scopes) || !got.CreatedAt.Equal(t0) || !got.JIT {
			t.Fatalf("got %+v, want %+v", got, c)
		}
		byDomain, err := s.SSOConnectionForDomain(ctx, "www."+d)
		must(t, err)
		if byDomain.ID != c.ID {
			t.Fatalf("for domain: %s, want %s", byDomain.ID, c.ID)
		}
		list, err := s.ListSSOConnections(ctx, f.a.ID)
		must(t, err)
		if len(list) != 1 || list[0].ID != c.ID {
			t.Fatalf("list = %+v", list)
		}
		// A domain belongs to one connection, of any company.
		wantErr(t, s.CreateSSOConnection(ctx, ssoConn(f.b.ID, d), ev(store.EventSSOConnectionCreated)), store.ErrConflict)
		wantErr(t, s.CreateSSOConnection(ctx, ssoConn("nope-"+f.a.ID, "x."+d), ev(store.EventSSOConnectionCreated)), store.ErrNotFound)
		t.Run("other company", func(t *testing.T) {
			_, err := s.GetSSOConnection(ctx, f.b.ID, c.ID)
			wantErr(t, err, store.ErrNotFound)
			wantErr(t, s.DeleteSSOConnection(ctx, f.b.ID, c.ID, ev(store.EventSSOConnectionDeleted)), store.ErrNotFound)
			list, err := s.ListSSOConnections(ctx, f.b.ID)
			must(t, err)
			if len(list) != 0 {
				t.Fatalf("b's list = %+v", list)
			}
		})
		must(t, s.DeleteSSOConnection(ctx, f.a.ID, c.ID, ev(store.EventSSOConnectionDeleted)))
		_, err = s.SSOConnectionForDomain(ctx, d)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetSSOConnection(ctx, f.a.ID, c.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetSSOConnection(ctx, f.a.ID, "not-a-uuid")
		wantErr(t, err, store.ErrNotFound)
		// The domain is free again.
		must(t, s.CreateSSOConnection(ctx, ssoConn(f.b.ID, d), ev(store.EventSSOConnectionCreated)))
	})

	t.Run("provision", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		u := newUser("jit-" + uuid.NewString()[:8] + "@" + f.a.ID + ".test")
		m := store.Membership{UserID: u.ID, CompanyID: f.a.ID, Roles: []string{"viewer"}, CreatedAt: t0}
		must(t, s.ProvisionSSOUser(ctx, u, m, ev(store.EventSSOUserProvisioned)))
		a, err := s.GetAccess(ctx, u.ID, f.a.ID)
		must(t, err)
		if !slices.Equal(a.Roles, []string{"viewer"}) {
			t.Fatalf("roles = %v", a.Roles)
		}
		// Taken email: nothing is made.
		dup := newUser(u.Email)
		wantErr(t, s.ProvisionSSOUser(ctx, dup, store.Membership{UserID: dup.ID, CompanyID: f.a.ID, Roles: []string{"viewer"}, CreatedAt: t0},
			ev(store.EventSSOUserProvisioned)), store.ErrConflict)
		_, err = s.GetUser(ctx, dup.ID)
		wantErr(t, err, store.ErrNotFound)
		t.Run("other company", func(t *testing.T) {
			// A company that does not exist: neither the user nor the membership.
			v := newUser("jit2-" + uuid.NewString()[:8] + "@" + f.b.ID + ".test")
			wantErr(t, s.ProvisionSSOUser(ctx, v, store.Membership{UserID: v.ID, CompanyID: "nope-" + f.b.ID, Roles: []string{"viewer"}, CreatedAt: t0},
				ev(store.EventSSOUserProvisioned)), store.ErrNotFound)
			_, err := s.GetUserByEmail(ctx, v.Email)
			wantErr(t, err, store.ErrNotFound)
			_, err = s.GetAccess(ctx, u.ID, f.b.ID)
			wantErr(t, err, store.ErrNotFound)
		})
	})
}
