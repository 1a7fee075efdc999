package authsvc

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/loginname"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// The admin API (/api/v1/admin): platform admins manage companies, users,
// memberships and read the audit trail; a company's owners and admins
// manage the memberships of that company — the company of their token —
// and nothing else. The caller is checked against the store on every
// request, not just against the token.

// admin is an authenticated caller of the admin API.
type admin struct {
	claims   *AccessClaims
	user     store.User
	platform bool
	roles    []string // in the token's company (nil for a platform admin without a membership)
}

func (s *Service) adminCaller(c *call) (*admin, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(c.ctx, claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken()
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken)
	}
	a := &admin{claims: claims, user: u, platform: u.PlatformAdmin}
	access, err := s.store.GetAccess(c.ctx, u.ID, claims.CompanyID)
	switch {
	case err == nil:
		a.roles = access.Roles
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return a, nil
}

// platformAdmin is the caller when it is a platform admin.
func (s *Service) platformAdmin(c *call) (*admin, error) {
	a, err := s.adminCaller(c)
	if err != nil {
		return nil, err
	}
	if err := a.requirePlatform(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *admin) requirePlatform() error {
	if !a.platform {
		return errForbidden("this needs a platform admin")
	}
	return nil
}

// requireCompanyAdmin: a platform admin, or an owner or admin of companyID
// whose token is bound to companyID.
func (a *admin) requireCompanyAdmin(companyID string) error {
	if a.platform {
		return nil
	}
	if !canManageKeys(a.roles) {
		return errForbidden("this needs the owner or admin role of the company, or a platform admin")
	}
	if companyID != a.claims.CompanyID {
		return contract.NewError(http.StatusForbidden, contract.CodeCompanyMismatch, "you can manage the memberships of your own company only")
	}
	return nil
}

var (
	slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	planRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

type companyAdminView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
}

func viewCompanyAdmin(c store.Company) companyAdminView {
	return companyAdminView{ID: c.ID, Name: c.Name, Plan: c.Plan, Disabled: c.Disabled, CreatedAt: c.CreatedAt}
}

type userAdminView struct {
	ID                string    `json:"id"`
	Email             string    `json:"email"`
	Name              string    `json:"name"`
	PlatformAdmin     bool      `json:"platform_admin"`
	Disabled          bool      `json:"disabled"`
	Locked            bool      `json:"locked"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
	CreatedAt         time.Time `json:"created_at"`
}

func viewUserAdmin(u store.User) userAdminView {
	return userAdminView{ID: u.ID, Email: u.Email, Name: u.Name, PlatformAdmin: u.PlatformAdmin, Disabled: u.Disabled, Locked: u.Locked,
		PasswordChangedAt: u.PasswordChangedAt, CreatedAt: u.CreatedAt}
}

type membershipView struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	CompanyID string    `json:"company_id"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
}

// adminEvent is the audit record of an admin change.
func (s *Service) adminEvent(c *call, typ, company, subject string, details map[string]string) store.Event {
	ev := s.event(c, typ)
	ev.CompanyID, ev.SubjectID, ev.Details = company, subject, details
	return ev
}

func (s *Service) handleAdminListCompanies(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	pg, page, limit, err := pageParams(c)
	if err != nil {
		return 0, nil, err
	}
	list, total, err := s.store.ListCompanies(c.ctx, pg)
	if err != nil {
		return 0, nil, err
	}
	out := make([]companyAdminView, 0, len(list))
	for _, co := range list {
		out = append(out, viewCompanyAdmin(co))
	}
	return http.StatusOK, paged{data: out, page: page, limit: limit, total: total}, nil
}

func (s *Service) handleAdminCreateCompany(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Plan string `json:"plan"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if !slugRe.MatchString(in.ID) {
		return 0, nil, invalid("id", "id is a slug: lower-case letters, digits, - and _, at most 63")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 200 {
		return 0, nil, invalid("name", "name is 1 to 200 characters")
	}
	if in.Plan == "" {
		in.Plan = "free"
	}
	if !planRe.MatchString(in.Plan) {
		return 0, nil, invalid("plan", "plan is a name like free or standard")
	}
	co := store.Company{ID: in.ID, Name: in.Name, Plan: in.Plan, CreatedAt: s.clock.Now()}
	ev := s.adminEvent(c, store.EventCompanyCreated, co.ID, co.ID, map[string]string{"name": co.Name, "plan": co.Plan})
	err = s.store.CreateCompany(c.ctx, co, ev)
	if errors.Is(err, store.ErrConflict) {
		return 0, nil, errConflict("a company with this id exists")
	}
	if err != nil {
		return 0, nil, err
	}
	co.CreatedAt = co.CreatedAt.UTC().Truncate(time.Microsecond)
	return http.StatusCreated, viewCompanyAdmin(co), nil
}

func (s *Service) handleAdminGetCompany(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	co, err := s.store.GetCompany(c.ctx, c.param)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such company")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewCompanyAdmin(co), nil
}

func (s *Service) handleAdminUpdateCompany(c *call) (int, any, error) {
	a, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name     *string `json:"name"`
		Plan     *string `json:"plan"`
		Disabled *bool   `json:"disabled"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	details := map[string]string{}
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || len(n) > 200 {
			return 0, nil, invalid("name", "name is 1 to 200 characters")
		}
		in.Name, details["name"] = &n, n
	}
	if in.Plan != nil {
		if !planRe.MatchString(*in.Plan) {
			return 0, nil, invalid("plan", "plan is a name like free or standard")
		}
		details["plan"] = *in.Plan
	}
	if in.Disabled != nil {
		details["disabled"] = strconv.FormatBool(*in.Disabled)
	}
	if len(details) == 0 {
		return 0, nil, invalid("", "give at least one of name, plan, disabled")
	}
	ev := s.adminEvent(c, store.EventCompanyUpdated, c.param, c.param, details)
	co, revoked, err := s.store.UpdateCompany(c.ctx, c.param, store.CompanyUpdate{Name: in.Name, Plan: in.Plan, Disabled: in.Disabled}, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such company")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	if co.Disabled && in.Disabled != nil {
		// The edge caches API key answers: tell it the company's keys are off.
		keys, err := s.store.ListAPIKeys(c.ctx, co.ID)
		if err != nil {
			return 0, nil, err
		}
		rs := make([]store.Revocation, len(keys))
		for i, k := range keys {
			rs[i] = store.Revocation{Kind: store.RevokedAPIKey, SubjectID: k.ID}
		}
		if err := s.redrive(c.ctx, rs); err != nil {
			// The company is disabled (introspection says so); only the
			// edges' cached answers (key_cache_ttl) outlive it.
			s.logger.Warn("announcing a disabled company's API keys failed", zap.String("company_id", co.ID), zap.Error(err))
		}
	}
	s.logger.Info("company updated", zap.String("company_id", co.ID), zap.String("by", a.user.ID), zap.Int("sessions_revoked", len(revoked)))
	return http.StatusOK, viewCompanyAdmin(co), nil
}

func (s *Service) handleAdminListUsers(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	pg, page, limit, err := pageParams(c)
	if err != nil {
		return 0, nil, err
	}
	list, total, err := s.store.ListUsers(c.ctx, pg)
	if err != nil {
		return 0, nil, err
	}
	out := make([]userAdminView, 0, len(list))
	for _, u := range list {
		out = append(out, viewUserAdmin(u))
	}
	return http.StatusOK, paged{data: out, page: page, limit: limit, total: total}, nil
}

func (s *Service) handleAdminCreateUser(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Email         string `json:"email"`
		Name          string `json:"name"`
		Password      string `json:"password"`
		PlatformAdmin bool   `json:"platform_admin"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	name, err := loginName("email", in.Email)
	if err != nil {
		return 0, nil, err
	}
	email := name.Email
	if len(in.Name) > 200 {
		return 0, nil, invalid("name", "name is at most 200 characters")
	}
	if err := validNewPassword("password", in.Password); err != nil {
		return 0, nil, err
	}
	h, err := s.hash(c.ctx, in.Password)
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	u := store.User{ID: uuid.NewString(), Email: email, Name: strings.TrimSpace(in.Name), PasswordHash: h, PlatformAdmin: in.PlatformAdmin,
		PasswordChangedAt: now, CreatedAt: now}
	ev := s.adminEvent(c, store.EventUserCreated, "", u.ID, map[string]string{"email": email, "platform_admin": strconv.FormatBool(in.PlatformAdmin)})
	err = s.store.CreateUser(c.ctx, u, ev)
	if errors.Is(err, store.ErrConflict) {
		// The same answer whether the name itself or a look-alike is taken,
		// and no word of which account it is.
		return 0, nil, errConflict("a user with this email, or with one that looks the same, exists")
	}
	if err != nil {
		return 0, nil, err
	}
	u.CreatedAt, u.PasswordChangedAt = u.CreatedAt.UTC().Truncate(time.Microsecond), u.PasswordChangedAt.UTC().Truncate(time.Microsecond)
	return http.StatusCreated, viewUserAdmin(u), nil
}

func (s *Service) handleAdminGetUser(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	u, err := s.store.GetUser(c.ctx, c.param)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, viewUserAdmin(u), nil
}

func (s *Service) handleAdminUpdateUser(c *call) (int, any, error) {
	a, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name          *string `json:"name"`
		Disabled      *bool   `json:"disabled"`
		PlatformAdmin *bool   `json:"platform_admin"`
		Locked        *bool   `json:"locked"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	details := map[string]string{}
	if in.Locked != nil {
		// Locking is the security monitor's (lock_account); an admin
		// unlocks, or locks by hand.
		details["locked"] = strconv.FormatBool(*in.Locked)
	}
	if in.Name != nil {
		if len(*in.Name) > 200 {
			return 0, nil, invalid("name", "name is at most 200 characters")
		}
		details["name"] = *in.Name
	}
	if in.Disabled != nil {
		if *in.Disabled && c.param == a.user.ID {
			return 0, nil, invalid("disabled", "you can't disable yourself")
		}
		details["disabled"] = strconv.FormatBool(*in.Disabled)
	}
	if in.PlatformAdmin != nil {
		if !*in.PlatformAdmin && c.param == a.user.ID {
			return 0, nil, invalid("platform_admin", "you can't remove your own platform admin right")
		}
		details["platform_admin"] = strconv.FormatBool(*in.PlatformAdmin)
	}
	if len(details) == 0 {
		return 0, nil, invalid("", "give at least one of name, disabled, platform_admin, locked")
	}
	ev := s.adminEvent(c, store.EventUserUpdated, "", c.param, details)
	u, revoked, err := s.store.UpdateUser(c.ctx, c.param, store.UserUpdate{Name: in.Name, Disabled: in.Disabled, PlatformAdmin: in.PlatformAdmin, Locked: in.Locked}, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	return http.StatusOK, viewUserAdmin(u), nil
}

func (s *Service) handleAdminResetPassword(c *call) (int, any, error) {
	a, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if err := validNewPassword("password", in.Password); err != nil {
		return 0, nil, err
	}
	if _, err := s.store.GetUser(c.ctx, c.param); errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	} else if err != nil {
		return 0, nil, err
	}
	h, err := s.hash(c.ctx, in.Password)
	if err != nil {
		return 0, nil, err
	}
	ev := s.adminEvent(c, store.EventUserPasswordReset, "", c.param, nil)
	revoked, err := s.store.SetPasswordHash(c.ctx, c.param, h, "", s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	s.logger.Info("password reset by an admin: sessions revoked", zap.String("user_id", c.param), zap.String("by", a.user.ID), zap.Int("sessions", len(revoked)))
	return http.StatusOK, map[string]any{"id": c.param, "password_reset": true, "revoked_sessions": revoked}, nil
}

func (s *Service) handleAdminListMemberships(c *call) (int, any, error) {
	a, err := s.adminCaller(c)
	if err != nil {
		return 0, nil, err
	}
	q := c.r.URL.Query()
	f := store.MembershipFilter{CompanyID: q.Get("company_id"), UserID: q.Get("user_id")}
	if !a.platform {
		if f.CompanyID == "" {
			f.CompanyID = a.claims.CompanyID
		}
		if err := a.requireCompanyAdmin(f.CompanyID); err != nil {
			return 0, nil, err
		}
	}
	pg, page, limit, err := pageParams(c)
	if err != nil {
		return 0, nil, err
	}
	list, total, err := s.store.FindMemberships(c.ctx, f, pg)
	if err != nil {
		return 0, nil, err
	}
	out := make([]membershipView, 0, len(list))
	for _, m := range list {
		roles := m.Roles
		if roles == nil {
			roles = []string{}
		}
		out = append(out, membershipView{UserID: m.UserID, Email: m.Email, CompanyID: m.CompanyID, Roles: roles, CreatedAt: m.CreatedAt})
	}
	return http.StatusOK, paged{data: out, page: page, limit: limit, total: total}, nil
}

// membershipTarget resolves the {company_id}/{user_id} of a membership
// path (the user by id or by email) after checking the caller may manage
// the company.
func (s *Service) membershipTarget(c *call, a *admin) (store.Company, store.User, error) {
	companyID, userRef := c.params[0], c.params[1]
	if err := a.requireCompanyAdmin(companyID); err != nil {
		return store.Company{}, store.User{}, err
	}
	co, err := s.store.GetCompany(c.ctx, companyID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Company{}, store.User{}, errNotFound("no such company")
	}
	if err != nil {
		return store.Company{}, store.User{}, err
	}
	var u store.User
	if strings.Contains(userRef, "@") {
		// By canonical name, as at login; a ref that is no valid name
		// names nobody.
		var name loginname.Name
		if name, err = loginname.Normalize(userRef); err == nil {
			u, err = s.store.GetUserByEmail(c.ctx, name.Email)
		} else {
			err = store.ErrNotFound
		}
	} else {
		u, err = s.store.GetUser(c.ctx, userRef)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Company{}, store.User{}, errNotFound("no such user")
	}
	return co, u, err
}

// ownerGuard: only owners and platform admins grant, change or remove the owner role.
func (a *admin) ownerGuard(old, next []string) error {
	if a.platform || slices.Contains(a.roles, RoleOwner) {
		return nil
	}
	if slices.Contains(old, RoleOwner) || slices.Contains(next, RoleOwner) {
		return errForbidden("only an owner can grant, change or remove the owner role")
	}
	return nil
}

func (s *Service) handleAdminPutMembership(c *call) (int, any, error) {
	a, err := s.adminCaller(c)
	if err != nil {
		return 0, nil, err
	}
	co, u, err := s.membershipTarget(c, a)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Roles []string `json:"roles"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	roles := slices.Clone(in.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if len(roles) == 0 {
		return 0, nil, invalid("roles", "roles is a non-empty list of owner, admin, accountant, sales, viewer")
	}
	for _, r := range roles {
		if !ValidRole(r) {
			return 0, nil, invalid("roles", "unknown role "+strconv.Quote(r))
		}
	}
	var old []string
	existing, err := s.store.GetAccess(c.ctx, u.ID, co.ID)
	switch {
	case err == nil:
		old = existing.Roles
	case !errors.Is(err, store.ErrNotFound):
		return 0, nil, err
	}
	if err := a.ownerGuard(old, roles); err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	ev := s.adminEvent(c, store.EventMembershipSet, co.ID, u.ID, map[string]string{"roles": strings.Join(roles, " "), "previous_roles": strings.Join(old, " ")})
	revoked, err := s.store.PutMembership(c.ctx, store.Membership{UserID: u.ID, CompanyID: co.ID, Roles: roles, CreatedAt: now}, now, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user or company")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	status := http.StatusOK
	if old == nil {
		status = http.StatusCreated
	}
	return status, map[string]any{"user_id": u.ID, "email": u.Email, "company_id": co.ID, "roles": roles, "revoked_sessions": revoked}, nil
}

func (s *Service) handleAdminDeleteMembership(c *call) (int, any, error) {
	a, err := s.adminCaller(c)
	if err != nil {
		return 0, nil, err
	}
	co, u, err := s.membershipTarget(c, a)
	if err != nil {
		return 0, nil, err
	}
	existing, err := s.store.GetAccess(c.ctx, u.ID, co.ID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such membership")
	}
	if err != nil {
		return 0, nil, err
	}
	if err := a.ownerGuard(existing.Roles, nil); err != nil {
		return 0, nil, err
	}
	ev := s.adminEvent(c, store.EventMembershipRemoved, co.ID, u.ID, map[string]string{"previous_roles": strings.Join(existing.Roles, " ")})
	revoked, err := s.store.DeleteMembership(c.ctx, u.ID, co.ID, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such membership")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	return http.StatusOK, map[string]any{"user_id": u.ID, "company_id": co.ID, "removed": true, "revoked_sessions": revoked}, nil
}

// handleChangePassword: the caller changes their own password with the
// current one; every other session of theirs ends.
func (s *Service) handleChangePassword(c *call) (int, any, error) {
	claims, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.CurrentPassword == "" || len(in.CurrentPassword) > maxPasswordLen {
		return 0, nil, invalid("current_password", "current_password is required")
	}
	if err := validNewPassword("new_password", in.NewPassword); err != nil {
		return 0, nil, err
	}
	// The current password is checked under the login limits (same account
	// and address counters), so this is no way around them.
	res, err := s.checkPassword(c.ctx, u.Email, in.CurrentPassword, c.ip)
	if err != nil {
		return 0, nil, err
	}
	if !res.ok || res.user.ID != u.ID {
		ev := s.event(c, store.EventPasswordChangeFailed)
		ev.SubjectID, ev.Details = u.ID, map[string]string{"reason": res.reason}
		if res.throttled != nil {
			ev.Type = store.EventLoginThrottled
		}
		if err := s.record(c.ctx, ev); err != nil {
			return 0, nil, err
		}
		if res.throttled != nil {
			return 0, nil, res.throttled
		}
		return 0, nil, invalid("current_password", "the current password is wrong")
	}
	h, err := s.hash(c.ctx, in.NewPassword)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventPasswordChanged)
	ev.SubjectID = u.ID
	revoked, err := s.store.SetPasswordHash(c.ctx, u.ID, h, claims.SessionID, s.clock.Now(), ev)
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(revoked)
	s.logger.Info("password changed by its user: other sessions revoked", zap.String("user_id", u.ID), zap.Int("sessions", len(revoked)))
	return http.StatusOK, map[string]any{"changed": true, "revoked_sessions": revoked}, nil
}
