package authsvc

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Every way of signing in ends in finishLogin: a password (flows.go), an
// SSO callback (sso.go, saml.go), a passkey (webauthn.go), a magic link
// (messaging.go). It weighs the login's risk (risk.go), decides whether a
// second factor is asked and which, and answers as the password login
// always has: the user, the companies, a login token for select-company.
// Every second factor ends in completeMFA, which spends the pending login
// token and issues one marked done (and, when asked, trusts the device).

// First factors: how a login proved who the user is (audit details).
const (
	FirstPassword  = "password"
	FirstSSO       = "sso"
	FirstPasskey   = "passkey"
	FirstMagicLink = "magic_link"
)

// Second-factor methods, as login answers name them in mfa_methods and
// POST /mfa/verify and /mfa/challenge take them.
const (
	MethodTOTP     = "totp"
	MethodEmail    = "email"
	MethodSMS      = "sms"
	MethodWebAuthn = "webauthn"
)

// loginAttempt is a proved first factor.
type loginAttempt struct {
	user  store.User
	first string // First…
	// strong: the first factor is multi-factor on its own (a passkey with
	// user verification): no second factor is asked.
	strong bool
	// deviceToken is the trusted-device credential the client presented
	// (the body's device_token or the device cookie), "" without one.
	deviceToken string
	// details go into the login.succeeded audit record (never a secret).
	details map[string]string
}

// riskAssessment is what assessRisk found about a login.
type riskAssessment struct {
	// Score: 0 (nothing unusual) to 100. At Config.RiskStepUp a second
	// factor is asked even on a trusted device; at Config.RiskDeny the
	// login is refused.
	Score int
	// Signals name what raised the score ("new_device", "new_network",
	// "recent_failures", "security_event", …), for the audit record.
	Signals []string
	// TrustedDevice is the id of a valid trusted device of this user that
	// the login presented, "" when none.
	TrustedDevice string
}

// finishLogin answers a login whose first factor was proved.
func (s *Service) finishLogin(c *call, a loginAttempt) (int, any, error) {
	user := a.user
	c.meta.UserID = user.ID
	risk, err := s.assessRisk(c, a)
	if err != nil {
		return 0, nil, err
	}
	signals := strings.Join(risk.Signals, ",")
	if s.cfg.RiskDeny > 0 && risk.Score >= s.cfg.RiskDeny {
		s.logger.Warn("login refused: risk", zap.String("user_id", user.ID), zap.String("ip", c.ip), zap.Int("score", risk.Score), zap.String("signals", signals))
		return 0, nil, s.refuse(c, store.EventLoginRiskRefused, ReasonRisk,
			unauthenticated(contract.CodeUnauthenticated, "this sign-in was refused; try again later or contact your administrator", hdrLogin),
			"first_factor", a.first, "score", strconv.Itoa(risk.Score), "signals", signals)
	}
	methods, err := s.mfaMethods(c, user)
	if err != nil {
		return 0, nil, err
	}
	stepUp := s.cfg.RiskStepUp > 0 && risk.Score >= s.cfg.RiskStepUp
	// A second factor: the user's own, unless the first was strong, came
	// from the company's identity provider (which enforces its own), or
	// the device is trusted; and always when the risk asks for a step up
	// (by a code to the account's address when the user has no factor).
	need := !a.strong && ((len(methods) > 0 && a.first != FirstSSO && risk.TrustedDevice == "") || stepUp)
	if need && len(methods) == 0 {
		methods = []string{MethodEmail}
	}
	mfa := "none"
	if need {
		mfa = "pending"
	} else {
		methods = nil
	}
	companies, err := s.store.ListMemberships(c.ctx, user.ID)
	if err != nil {
		return 0, nil, err
	}
	now := s.clock.Now()
	lt, err := s.issueLogin(user.ID, mfa, methods, now)
	if err != nil {
		return 0, nil, err
	}
	views := make([]companyView, 0, len(companies))
	for _, m := range companies {
		views = append(views, viewCompany(m.Company, m.Roles))
	}
	ev := s.event(c, store.EventLoginSucceeded)
	ev.Details = map[string]string{"mfa_required": strconv.FormatBool(need), "first_factor": a.first}
	if risk.Score > 0 {
		ev.Details["risk_score"], ev.Details["risk_signals"] = strconv.Itoa(risk.Score), signals
	}
	if risk.TrustedDevice != "" {
		ev.Details["trusted_device"] = risk.TrustedDevice
	}
	for k, v := range a.details {
		ev.Details[k] = v
	}
	if err := s.record(c.ctx, ev); err != nil {
		return 0, nil, err
	}
	if !need {
		s.noteLogin(c, user.ID)
	}
	s.logger.Info("login succeeded", zap.String("user_id", user.ID), zap.String("ip", c.ip), zap.String("first_factor", a.first),
		zap.Bool("mfa_required", need), zap.Int("risk_score", risk.Score))
	if methods == nil {
		methods = []string{}
	}
	return http.StatusOK, map[string]any{
		"user":         viewUser(user),
		"companies":    views,
		"login_token":  lt,
		"expires_in":   int64(LoginTokenTTL / time.Second),
		"mfa_required": need,
		"mfa_methods":  methods,
	}, nil
}

// mfaMethods are the second factors the user has enrolled, in the order
// the hosted page offers them.
func (s *Service) mfaMethods(c *call, u store.User) ([]string, error) {
	var out []string
	if s.mfa != nil {
		on, err := s.mfa.Required(c.ctx, u)
		if err != nil {
			return nil, err
		}
		if on {
			out = append(out, MethodTOTP)
		}
	}
	for _, f := range []func(*call, store.User) (string, bool, error){s.webauthnFactor, s.emailFactor, s.smsFactor} {
		m, on, err := f(c, u)
		if err != nil {
			return nil, err
		}
		if on {
			out = append(out, m)
		}
	}
	return out, nil
}

// methods are the second factors a pending login token may be completed
// with (a token issued before mfa_methods existed: TOTP).
func (lc *loginClaims) methods() []string {
	if lc.MFA != "pending" {
		return nil
	}
	if len(lc.Methods) == 0 {
		return []string{MethodTOTP}
	}
	return lc.Methods
}

// pendingLogin verifies a login token that waits for a second factor and
// loads its user: the start of every second-factor step. failed audits a
// refusal with its reason (EventMFAFailed).
func (s *Service) pendingLogin(c *call, token string) (*loginClaims, store.User, error) {
	if token == "" {
		return nil, store.User{}, invalid("login_token", "login_token is required")
	}
	lc, err := s.verifyLogin(token)
	if err != nil {
		return nil, store.User{}, s.refuse(c, store.EventMFAFailed, ReasonInvalidLoginToken, err)
	}
	c.meta.UserID = lc.Subject
	if lc.MFA != "pending" {
		return nil, store.User{}, s.refuse(c, store.EventMFAFailed, ReasonMFANotPending, contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "this login token needs no second factor"))
	}
	u, err := s.store.GetUser(c.ctx, lc.Subject)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, store.User{}, err
	}
	if err != nil || u.Disabled {
		return nil, store.User{}, s.refuse(c, store.EventMFAFailed, ReasonUserDisabled, errBadCredentials())
	}
	return lc, u, nil
}

// loginSpent reports whether the pending login token was already
// completed (checked before a code is looked at, so that a good code is
// not burnt on a spent token).
func (s *Service) loginSpent(c *call, lc *loginClaims) error {
	used, err := s.counters.Marked(c.ctx, "login:used:"+lc.ID)
	if err != nil {
		return err
	}
	if used {
		return s.refuse(c, store.EventLoginTokenReplayed, ReasonAlreadyUsed, errLoginTokenUsed(), "step", "mfa_verify")
	}
	return nil
}

// completeMFA ends a second factor that passed: the pending login token is
// spent (once: a parallel second completion is refused) and one marked
// done is issued; with trust, the device is trusted for the user (its
// credential in the answer and a cookie).
func (s *Service) completeMFA(c *call, u store.User, lc *loginClaims, method string, trust bool) (int, any, error) {
	first, err := s.counters.MarkOnce(c.ctx, "login:used:"+lc.ID, LoginTokenTTL+time.Minute)
	if err != nil {
		return 0, nil, err
	}
	if !first {
		return 0, nil, s.refuse(c, store.EventLoginTokenReplayed, ReasonAlreadyUsed, errLoginTokenUsed(), "step", "mfa_verify")
	}
	now := s.clock.Now()
	lt, err := s.issueLogin(u.ID, "done", nil, now)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFAVerified)
	ev.Details = map[string]string{"method": method}
	if err := s.record(c.ctx, ev); err != nil {
		return 0, nil, err
	}
	out := map[string]any{
		"login_token":  lt,
		"expires_in":   int64(LoginTokenTTL / time.Second),
		"mfa_required": false,
		"method":       method,
	}
	if trust {
		dev, err := s.trustDevice(c, u)
		if err != nil {
			return 0, nil, err
		}
		if dev != nil {
			out["device"] = dev
		}
	}
	s.noteLogin(c, u.ID)
	return http.StatusOK, out, nil
}

// handleMFAVerify checks a second-factor code against a pending login
// token: TOTP (or a recovery code), or a code sent by mail or SMS
// (POST /mfa/challenge). A passkey is verified at /webauthn/login/finish.
func (s *Service) handleMFAVerify(c *call) (int, any, error) {
	var in struct {
		LoginToken  string `json:"login_token"`
		Code        string `json:"code"`
		Method      string `json:"method"`
		TrustDevice bool   `json:"trust_device"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.LoginToken == "" {
		return 0, nil, invalid("login_token", "login_token is required")
	}
	if in.Code == "" {
		return 0, nil, invalid("code", "code is required")
	}
	lc, u, err := s.pendingLogin(c, in.LoginToken)
	if err != nil {
		return 0, nil, err
	}
	allowed := lc.methods()
	method := in.Method
	if method == "" {
		method = allowed[0]
		if slices.Contains(allowed, MethodTOTP) {
			method = MethodTOTP
		}
	}
	if !slices.Contains(allowed, method) {
		return 0, nil, invalid("method", "method must be one of: "+strings.Join(allowed, ", "))
	}
	if err := s.loginSpent(c, lc); err != nil {
		return 0, nil, err
	}
	switch method {
	case MethodTOTP:
		t, err := s.store.GetTOTP(c.ctx, u.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
		if err != nil || !t.Active() { // turned off since the login: log in again
			return 0, nil, s.refuse(c, store.EventMFAFailed, ReasonMFAOff, unauthenticated(contract.CodeUnauthenticated, "the login token is invalid or expired; log in again", hdrInvalidToken))
		}
		if method, err = s.checkCode(c, t, in.Code, true); err != nil {
			return 0, nil, err
		}
	case MethodEmail, MethodSMS:
		if err := s.verifyMessageCode(c, u, lc, method, in.Code); err != nil {
			return 0, nil, err
		}
	default:
		return 0, nil, invalid("method", "a passkey is verified at POST /api/v1/auth/webauthn/login/finish")
	}
	return s.completeMFA(c, u, lc, method, in.TrustDevice)
}

// redirect is an answer that sends the browser elsewhere (an SSO start,
// a callback's end): 302 (or status) with Location, no body.
type redirect struct {
	location string
	status   int
}

func (d redirect) write(w http.ResponseWriter) {
	st := d.status
	if st == 0 {
		st = http.StatusFound
	}
	w.Header().Set("Location", d.location)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(st)
}
