package store

import (
	"context"
	"slices"
	"time"
)

// Membership gives a user roles in a company.
type Membership struct {
	UserID    string
	CompanyID string
	Roles     []string
	CreatedAt time.Time
}

// MembershipFilter selects memberships; empty fields match everything.
type MembershipFilter struct {
	CompanyID string
	UserID    string
}

// MembershipView is a membership with the user's email, for listings.
type MembershipView struct {
	Membership
	Email string
}

// Access is what an issue of tokens needs: the user's state, the company and
// the user's roles in it, read together.
type Access struct {
	UserID       string
	UserDisabled bool
	Company      Company
	Roles        []string
}

// CompanyMembership is one entry of a user's company list.
type CompanyMembership struct {
	Company Company
	Roles   []string
}

// MembershipStore keeps who has which roles in which company.
type MembershipStore interface {
	// PutMembership creates or replaces the user's roles in the company. A
	// change of roles revokes the user's sessions bound to the company (their
	// tokens carry the old roles); their ids are returned.
	PutMembership(ctx context.Context, m Membership, now time.Time, ev Event) ([]string, error)
	// DeleteMembership removes a membership and revokes the user's sessions
	// bound to the company.
	DeleteMembership(ctx context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error)
	// GetAccess is the user's access to the company; ErrNotFound without a membership.
	GetAccess(ctx context.Context, userID, companyID string) (Access, error)
	ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error)
	// FindMemberships lists memberships by company then email, with the total count.
	FindMemberships(ctx context.Context, f MembershipFilter, p Page) ([]MembershipView, int64, error)
}

// sameRoles compares role sets.
func sameRoles(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
