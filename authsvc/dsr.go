package authsvc

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Data-subject requests of the admin API, platform admins only: a person
// may belong to several companies, and what is stored about them spans
// all of them, so no company's admin may read or erase it.
var dsrRoutes = map[string]handlerFunc{
	"GET /api/v1/admin/users/{id}/export": (*Service).handleAdminExportUser,
	"DELETE /api/v1/admin/users/{id}":     (*Service).handleAdminEraseUser,
}

// exportAuditMax bounds the audit records of one export; a person with
// more gets the newest ones and audit_truncated.
const exportAuditMax = 10000

// userExport is everything stored about a person, without a secret: no
// password hash, TOTP secret, recovery code, refresh token, key material,
// phone number (only its masked form) or device credential.
type userExport struct {
	ExportedAt     time.Time          `json:"exported_at"`
	User           userAdminView      `json:"user"`
	Memberships    []exportMembership `json:"memberships"`
	Sessions       []exportSession    `json:"sessions"`
	TOTP           *exportFactor      `json:"totp"`
	Factors        []exportFactor     `json:"factors"`
	Passkeys       []exportPasskey    `json:"passkeys"`
	TrustedDevices []exportDevice     `json:"trusted_devices"`
	LoginHistory   []exportLogin      `json:"login_history"`
	APIKeys        []exportAPIKey     `json:"api_keys"`
	SSO            []exportSSO        `json:"sso"`
	Audit          []auditView        `json:"audit"`
	AuditTotal     int64              `json:"audit_total"`
	AuditTruncated bool               `json:"audit_truncated"`
}

type exportMembership struct {
	CompanyID   string   `json:"company_id"`
	CompanyName string   `json:"company_name"`
	Roles       []string `json:"roles"`
}

type exportSession struct {
	ID         string    `json:"id"`
	CompanyID  string    `json:"company_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	MFA        bool      `json:"mfa"`
}

type exportFactor struct {
	Kind        string     `json:"kind"`
	Phone       string     `json:"phone,omitempty"` // masked
	CreatedAt   time.Time  `json:"created_at"`
	ConfirmedAt *time.Time `json:"confirmed_at"`
}

type exportPasskey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	AAGUID     string     `json:"aaguid"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type exportDevice struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

type exportLogin struct {
	Fingerprint string    `json:"device_fingerprint"`
	Network     string    `json:"network"`
	At          time.Time `json:"at"`
}

type exportAPIKey struct {
	ID        string     `json:"id"`
	CompanyID string     `json:"company_id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Scope     []string   `json:"scope"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

type exportSSO struct {
	ConnectionID string `json:"connection_id"`
	CompanyID    string `json:"company_id"`
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Service) handleAdminExportUser(c *call) (int, any, error) {
	if _, err := s.platformAdmin(c); err != nil {
		return 0, nil, err
	}
	u, err := s.store.GetUser(c.ctx, c.param)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	}
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	out := userExport{ExportedAt: now.UTC(), User: viewUserAdmin(u), Memberships: []exportMembership{}, Sessions: []exportSession{},
		Factors: []exportFactor{}, Passkeys: []exportPasskey{}, TrustedDevices: []exportDevice{}, LoginHistory: []exportLogin{},
		APIKeys: []exportAPIKey{}, SSO: []exportSSO{}, Audit: []auditView{}}
	ms, err := s.store.ListMemberships(c.ctx, u.ID)
	if err != nil {
		return 0, nil, err
	}
	for _, m := range ms {
		out.Memberships = append(out.Memberships, exportMembership{CompanyID: m.Company.ID, CompanyName: m.Company.Name, Roles: m.Roles})
		keys, err := s.store.ListAPIKeys(c.ctx, m.Company.ID)
		if err != nil {
			return 0, nil, err
		}
		for _, k := range keys {
			if k.CreatedBy == u.ID {
				out.APIKeys = append(out.APIKeys, exportAPIKey{ID: k.ID, CompanyID: k.CompanyID, Name: k.Name, Prefix: k.Prefix, Scope: k.Scope,
					CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt)})
			}
		}
	}
	sessions, err := s.store.ListSessions(c.ctx, u.ID, now)
	if err != nil {
		return 0, nil, err
	}
	for _, se := range sessions {
		out.Sessions = append(out.Sessions, exportSession{ID: se.ID, CompanyID: se.CompanyID, CreatedAt: se.CreatedAt, LastUsedAt: se.LastUsedAt,
			ExpiresAt: se.ExpiresAt, UserAgent: se.UserAgent, IP: se.IP, MFA: se.MFA})
	}
	switch t, err := s.store.GetTOTP(c.ctx, u.ID); {
	case err == nil:
		out.TOTP = &exportFactor{Kind: "totp", CreatedAt: t.CreatedAt, ConfirmedAt: timePtr(t.ConfirmedAt)}
	case !errors.Is(err, store.ErrNotFound):
		return 0, nil, err
	}
	factors, err := s.store.ListFactors(c.ctx, u.ID)
	if err != nil {
		return 0, nil, err
	}
	for _, f := range factors {
		out.Factors = append(out.Factors, exportFactor{Kind: f.Kind, Phone: f.PhoneMasked, CreatedAt: f.CreatedAt, ConfirmedAt: timePtr(f.ConfirmedAt)})
	}
	creds, err := s.store.ListWebAuthnCredentials(c.ctx, u.ID)
	if err != nil {
		return 0, nil, err
	}
	for _, cr := range creds {
		out.Passkeys = append(out.Passkeys, exportPasskey{ID: cr.ID, Name: cr.Name, AAGUID: viewCredential(cr).AAGUID, CreatedAt: cr.CreatedAt,
			LastUsedAt: timePtr(cr.LastUsedAt)})
	}
	devices, err := s.store.ListTrustedDevices(c.ctx, u.ID, now)
	if err != nil {
		return 0, nil, err
	}
	for _, d := range devices {
		out.TrustedDevices = append(out.TrustedDevices, exportDevice{ID: d.ID, Name: d.Name, IP: d.IP, CreatedAt: d.CreatedAt,
			LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt})
	}
	logins, err := s.store.RecentLogins(c.ctx, u.ID, time.Time{})
	if err != nil {
		return 0, nil, err
	}
	for _, l := range logins {
		out.LoginHistory = append(out.LoginHistory, exportLogin{Fingerprint: l.Fingerprint, Network: l.Network, At: l.At})
	}
	if _, domain, ok := strings.Cut(u.Email, "@"); ok {
		switch conn, err := s.store.SSOConnectionForDomain(c.ctx, domain); {
		case err == nil:
			out.SSO = append(out.SSO, exportSSO{ConnectionID: conn.ID, CompanyID: conn.CompanyID, Kind: conn.Kind, Name: conn.Name, Domain: domain})
		case !errors.Is(err, store.ErrNotFound):
			return 0, nil, err
		}
	}
	for page := 0; len(out.Audit) < exportAuditMax; page++ {
		evs, total, err := s.store.ListAudit(c.ctx, store.AuditFilter{UserID: u.ID}, store.Page{Offset: page * maxLimit, Limit: maxLimit})
		if err != nil {
			return 0, nil, err
		}
		out.AuditTotal = total
		for _, e := range evs {
			out.Audit = append(out.Audit, viewEvent(e))
		}
		if len(evs) < maxLimit {
			break
		}
	}
	out.AuditTruncated = int64(len(out.Audit)) < out.AuditTotal
	return http.StatusOK, out, nil
}

func (s *Service) handleAdminEraseUser(c *call) (int, any, error) {
	a, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	if v := c.r.URL.Query().Get("erase"); v != "true" {
		e := contract.NewError(http.StatusBadRequest, contract.CodeBadRequest,
			"deleting a user erases the account and all personal data and pseudonymises the audit records about them; it can't be undone: "+
				"confirm with ?erase=true (to block an account instead, PATCH it with {\"disabled\": true})")
		e.Field = "erase"
		return 0, nil, e
	}
	if c.param == a.user.ID {
		return 0, nil, invalid("id", "you can't erase yourself")
	}
	pseudonym := "erased:" + uuid.NewString()
	ev := s.adminEvent(c, store.EventUserErased, "", pseudonym, nil)
	res, err := s.store.EraseUser(c.ctx, c.param, pseudonym, s.clock.Now(), s.auditKey, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such user")
	}
	if err != nil {
		return 0, nil, err
	}
	s.sessionsRevoked(res.RevokedSessions)
	s.logger.Info("user erased", zap.String("pseudonym", pseudonym), zap.String("by", a.user.ID),
		zap.Int("sessions_revoked", len(res.RevokedSessions)), zap.Int64("audit_records", res.AuditRecords))
	return http.StatusOK, map[string]any{"id": c.param, "erased": true, "pseudonym": pseudonym,
		"revoked_sessions": len(res.RevokedSessions), "audit_records_pseudonymised": res.AuditRecords}, nil
}
