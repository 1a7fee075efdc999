package authsvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

const maxPasswordLen = 1024

// Shapes of the answers.
type (
	userView struct {
		ID            string `json:"id"`
		Email         string `json:"email"`
		Name          string `json:"name"`
		PlatformAdmin bool   `json:"platform_admin"`
	}
	companyView struct {
		ID    string   `json:"id"`
		Name  string   `json:"name"`
		Plan  string   `json:"plan"`
		Roles []string `json:"roles"`
		Scope string   `json:"scope"`
	}
	tokenPair struct {
		AccessToken      string      `json:"access_token"`
		TokenType        string      `json:"token_type"`
		ExpiresIn        int64       `json:"expires_in"`
		RefreshToken     string      `json:"refresh_token"`
		RefreshExpiresIn int64       `json:"refresh_expires_in"`
		SessionID        string      `json:"session_id"`
		Company          companyView `json:"company"`
	}
	sessionView struct {
		ID         string    `json:"id"`
		CompanyID  string    `json:"company_id"`
		Device     string    `json:"device"`
		UserAgent  string    `json:"user_agent"`
		IP         string    `json:"ip"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
		Current    bool      `json:"current"`
	}
)

func viewUser(u store.User) userView {
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, PlatformAdmin: u.PlatformAdmin}
}

func viewCompany(c store.Company, roles []string) companyView {
	if roles == nil {
		roles = []string{}
	}
	return companyView{ID: c.ID, Name: c.Name, Plan: c.Plan, Roles: roles, Scope: scopeString(roles)}
}

// attemptKey names a counter without putting the address in clear in Redis.
func attemptKey(kind, v string) string {
	h := sha256.Sum256([]byte(v))
	return contract.RedisKeyLoginAttempts + kind + ":" + hex.EncodeToString(h[:16])
}

// dummy is a valid hash of a random password, verified for unknown users so
// that they cost the same argon2 work as known ones.
func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		if d, ok := s.hasher.(interface{ Dummy() string }); ok {
			s.dummyHash = d.Dummy()
			return
		}
		h, err := s.hasher.Hash(s.ctx, randomSecret())
		if err != nil {
			h = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}
		s.dummyHash = h
	})
	return s.dummyHash
}

// errBadCredentials is the one answer to every failed password check:
// unknown user, wrong password and disabled user look alike.
func errBadCredentials() error {
	return unauthenticated(contract.CodeUnauthenticated, "invalid email or password", hdrLogin)
}

func (s *Service) handleLogin(c *call) (int, any, error) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		// DeviceToken is a trusted device's credential (API clients; a
		// browser sends the device cookie).
		DeviceToken string `json:"device_token"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	// The account is the one of the canonical name or none: a look-alike
	// (Cyrillic і for i) is another name, unknown unless it was created.
	name, err := loginName("email", in.Email)
	if err != nil {
		return 0, nil, err
	}
	email := name.Email
	// Home-realm discovery: an address whose domain signs in with its
	// company's identity provider gets the SSO start, with or without a
	// password (which is never checked for it). It depends on the domain
	// alone, so it tells nothing about the account.
	if sso, ok, err := s.ssoRequired(c, email); err != nil {
		return 0, nil, err
	} else if ok {
		return http.StatusOK, sso, nil
	}
	if in.Password == "" || len(in.Password) > maxPasswordLen {
		return 0, nil, invalid("password", "a password of at most 1024 bytes is required")
	}
	res, err := s.checkPassword(c.ctx, email, in.Password, c.ip)
	if err != nil {
		return 0, nil, err
	}
	if !res.ok {
		ev := s.event(c, store.EventLoginFailed)
		ev.ActorID, ev.Details = res.user.ID, map[string]string{"email": email, "reason": res.reason}
		if res.throttled != nil {
			ev.Type = store.EventLoginThrottled
		}
		if err := s.record(c.ctx, ev); err != nil {
			return 0, nil, err
		}
		if res.throttled != nil {
			return 0, nil, res.throttled
		}
		return 0, nil, errBadCredentials()
	}
	return s.finishLogin(c, loginAttempt{user: res.user, first: FirstPassword, deviceToken: s.deviceToken(c, in.DeviceToken)})
}

// passwordCheck is the outcome of checkPassword. When ok is false, reason
// says why (for the audit trail, never for the caller) and throttled is the
// answer when a limit refused the attempt; user is set when the email is known.
type passwordCheck struct {
	user      store.User
	ok        bool
	reason    string
	throttled error
}

// checkPassword throttles, then checks email and password with the same
// work whatever the outcome. Attempts are reserved before the hash runs
// (atomically, in Redis or under a mutex), so parallel guesses can't get
// past the limits; a success gives its reservations back.
func (s *Service) checkPassword(ctx context.Context, email, password, ip string) (passwordCheck, error) {
	acctKey, ipKey := attemptKey("account", email), attemptKey("ip", ip)
	okAcct, retryAcct, err := s.counters.Reserve(ctx, acctKey, s.cfg.LoginAccountLimit, s.cfg.LoginWindow)
	if err != nil {
		return passwordCheck{}, err
	}
	okIP, retryIP, err := s.counters.Reserve(ctx, ipKey, s.cfg.LoginIPLimit, s.cfg.LoginWindow)
	if err != nil {
		return passwordCheck{}, err
	}
	if !okAcct || !okIP {
		reason := "account_limit"
		if !okIP {
			reason = "address_limit"
		}
		if ce := s.refusals.CheckLine(zap.WarnLevel, "login throttled", reason); ce != nil {
			ce.Write(zap.String("ip", ip), zap.Bool("account_limit", !okAcct), zap.Bool("ip_limit", !okIP))
		}
		return passwordCheck{reason: reason, throttled: errRateLimited(max(retryAcctIf(okAcct, retryAcct), retryAcctIf(okIP, retryIP)))}, nil
	}
	user, err := s.store.GetUserByEmail(ctx, email)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return passwordCheck{}, err
	}
	hash := s.dummy()
	if known {
		hash = user.PasswordHash
	}
	match, err := s.hasher.Verify(ctx, password, hash)
	if errors.Is(err, ErrHashBusy) {
		// Not an attempt: no password was checked. Its reservations go back,
		// and the caller is told when to come back; nothing is audited (a
		// storm must not become a storm of audit writes).
		if rerr := s.refundAttempt(ctx, acctKey, ipKey); rerr != nil {
			return passwordCheck{}, rerr
		}
		if ce := s.refusals.CheckLine(zap.WarnLevel, "login refused: password hashing busy", "hashing_busy"); ce != nil {
			ce.Write(zap.String("ip", ip))
		}
		return passwordCheck{}, errHashingBusy(err)
	}
	if err != nil && ctx.Err() != nil {
		return passwordCheck{}, ctx.Err()
	}
	if err != nil {
		s.logger.Error("login: stored password hash unusable", zap.String("user_id", user.ID))
	}
	// A locked account (the security monitor's lock_account) is refused
	// as a disabled one is: the same answer as a wrong password, so an
	// attacker learns nothing from it; only the audit trail says why.
	if !known || !match || user.Disabled || user.Locked {
		reason := "bad_password"
		switch {
		case !known:
			reason = "unknown_user"
		case match && user.Disabled:
			reason = "user_disabled"
		case match && user.Locked:
			reason = "user_locked"
		}
		if ce := s.refusals.CheckLine(zap.InfoLevel, "login failed", reason); ce != nil {
			ce.Write(zap.String("reason", reason), zap.String("user_id", user.ID), zap.String("ip", ip))
		}
		return passwordCheck{user: store.User{ID: user.ID}, reason: reason}, nil
	}
	// A success does not count against either limit.
	if err := s.refundAttempt(ctx, acctKey, ipKey); err != nil {
		return passwordCheck{}, err
	}
	s.rehash(ctx, &user, password)
	return passwordCheck{user: user, ok: true}, nil
}

// refundAttempt gives back the reservations of an attempt on both limits.
func (s *Service) refundAttempt(ctx context.Context, acctKey, ipKey string) error {
	if err := s.counters.Refund(ctx, acctKey); err != nil {
		return err
	}
	return s.counters.Refund(ctx, ipKey)
}

// rehash replaces the user's stored hash, just verified against password,
// when it was made with other parameters than new hashes get. It is best
// effort: when hashing is busy or the store fails, the login goes on and
// the next one tries again. The store replaces the hash only if it is
// still the one verified, so a password changed meanwhile stays changed.
func (s *Service) rehash(ctx context.Context, user *store.User, password string) {
	r, ok := s.hasher.(interface{ NeedsRehash(string) bool })
	if !ok || !r.NeedsRehash(user.PasswordHash) {
		return
	}
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		s.logger.Info("password rehash deferred: hashing busy", zap.String("user_id", user.ID))
		return
	}
	replaced, err := s.store.ReplacePasswordHash(ctx, user.ID, user.PasswordHash, h)
	if err != nil {
		s.logger.Warn("password rehash failed", zap.String("user_id", user.ID), zap.Error(err))
		return
	}
	if replaced {
		user.PasswordHash = h
		s.logger.Info("password rehashed with the configured parameters", zap.String("user_id", user.ID))
	}
}

// hash hashes a new password; a busy hasher answers 429 RATE_LIMITED.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	h, err := s.hasher.Hash(ctx, password)
	if errors.Is(err, ErrHashBusy) {
		return "", errHashingBusy(err)
	}
	return h, err
}

// errHashingBusy is the answer when no hashing slot was free in time: 429
// RATE_LIMITED with Retry-After, the same code as a throttled login (the
// client's remedy is the same: wait and retry).
func errHashingBusy(err error) error {
	retry := DefaultHashQueueWait
	var busy *HashBusyError
	if errors.As(err, &busy) {
		retry = busy.RetryAfter
	}
	e, _ := contract.AsError(errRateLimited(retry))
	e.Message = "the service is busy; try again later"
	return e
}

// companyAccess is the user's access to a company for issuing tokens: their
// membership, or — for a platform admin without one — the company with no
// roles (the admin API checks the user, not the token's roles).
// ErrNotFound: no such access.
func (s *Service) companyAccess(ctx context.Context, userID, companyID string) (store.Access, bool, error) {
	access, err := s.store.GetAccess(ctx, userID, companyID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return access, false, err
	}
	u, uerr := s.store.GetUser(ctx, userID)
	if uerr != nil || !u.PlatformAdmin {
		return store.Access{}, false, err
	}
	co, cerr := s.store.GetCompany(ctx, companyID)
	if cerr != nil {
		return store.Access{}, false, cerr
	}
	return store.Access{UserID: userID, UserDisabled: u.Disabled, Company: co, Roles: []string{}}, true, nil
}

func errCompanyDisabled() error { return errForbidden("this company is disabled") }

func retryAcctIf(ok bool, d time.Duration) time.Duration {
	if ok {
		return 0
	}
	return d
}

func (s *Service) handleSelectCompany(c *call) (int, any, error) {
	var in struct {
		LoginToken string `json:"login_token"`
		CompanyID  string `json:"company_id"`
		Cookie     bool   `json:"cookie"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.LoginToken == "" {
		return 0, nil, invalid("login_token", "login_token is required")
	}
	if in.CompanyID == "" {
		return 0, nil, invalid("company_id", "company_id is required")
	}
	refused := func(reason string, refusal error) (int, any, error) {
		return 0, nil, s.refuse(c, store.EventCompanySelectRefused, reason, refusal, "company_id", in.CompanyID)
	}
	lc, err := s.verifyLogin(in.LoginToken)
	if err != nil {
		return refused(ReasonInvalidLoginToken, err)
	}
	c.meta.UserID = lc.Subject
	if lc.MFA == "pending" {
		return refused(ReasonMFAPending, unauthenticated(contract.CodeMFARequired, "a second factor is required: verify it first", hdrInvalidToken))
	}
	access, _, err := s.companyAccess(c.ctx, lc.Subject, in.CompanyID)
	if errors.Is(err, store.ErrNotFound) {
		return refused(ReasonNotMember, errForbidden("you are not a member of this company"))
	}
	if err != nil {
		return 0, nil, err
	}
	if access.UserDisabled {
		return refused(ReasonUserDisabled, errBadCredentials())
	}
	if access.Company.Disabled {
		return refused(ReasonCompanyDisabled, errCompanyDisabled())
	}
	first, err := s.counters.MarkOnce(c.ctx, "login:used:"+lc.ID, LoginTokenTTL+time.Minute)
	if err != nil {
		return 0, nil, err
	}
	if !first {
		return 0, nil, s.refuse(c, store.EventLoginTokenReplayed, ReasonAlreadyUsed, errLoginTokenUsed(), "step", "select_company")
	}
	now := s.clock.Now()
	rt, rtHash := newRefreshToken()
	sess := store.Session{
		ID: uuid.NewString(), UserID: lc.Subject, CompanyID: access.Company.ID,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
		UserAgent: truncate(c.r.UserAgent(), 512), IP: c.ip, MFA: lc.MFA == "done",
	}
	c.meta.CompanyID = access.Company.ID
	ev := s.event(c, store.EventCompanySelected)
	ev.SubjectID, ev.Details = sess.ID, map[string]string{"mfa": strconv.FormatBool(sess.MFA)}
	if err := s.store.CreateSession(c.ctx, sess, store.RefreshToken{Hash: rtHash, ExpiresAt: s.refreshExpiry(now, sess.ExpiresAt)}, ev); err != nil {
		return 0, nil, err
	}
	s.logger.Info("session started", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID), zap.String("company_id", sess.CompanyID))
	pair, err := s.pair(sess, access, rt, now)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, answerPair(c, pair, in.Cookie), nil
}

// errLoginTokenUsed answers a login token that was already spent.
func errLoginTokenUsed() error {
	return unauthenticated(contract.CodeTokenRevoked, "the login token was already used; log in again", hdrInvalidToken)
}

func (s *Service) refreshExpiry(now, sessionEnd time.Time) time.Time {
	exp := now.Add(s.cfg.RefreshIdleTTL)
	if exp.After(sessionEnd) {
		exp = sessionEnd
	}
	return exp
}

func (s *Service) pair(sess store.Session, access store.Access, refresh string, now time.Time) (tokenPair, error) {
	at, err := s.issueAccess(sess.UserID, sess.ID, access.Company.ID, access.Company.Plan, access.Roles, now)
	if err != nil {
		return tokenPair{}, err
	}
	issuedRefresh.Inc() // stored with the session; answered now
	return tokenPair{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.cfg.AccessTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int64(s.refreshExpiry(now, sess.ExpiresAt).Sub(now) / time.Second),
		SessionID: sess.ID, Company: viewCompany(access.Company, access.Roles),
	}, nil
}

func (s *Service) handleRefresh(c *call) (int, any, error) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
		Cookie       bool   `json:"cookie"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.Cookie && in.RefreshToken == "" {
		tok, err := s.refreshCookie(c)
		if err != nil {
			return 0, nil, err
		}
		in.RefreshToken = tok
	}
	if in.RefreshToken == "" {
		return 0, nil, invalid("refresh_token", "refresh_token is required")
	}
	if !validRefreshFormat(in.RefreshToken) {
		return 0, nil, s.refuse(c, store.EventRefreshRefused, ReasonMalformed, unauthenticated(contract.CodeUnauthenticated, "the refresh token is invalid", hdrInvalidToken))
	}
	now := s.clock.Now()
	rt, rtHash := newRefreshToken()
	res, err := s.store.RotateRefreshToken(c.ctx, hashSecret(in.RefreshToken),
		store.RefreshToken{Hash: rtHash, ExpiresAt: now.Add(s.cfg.RefreshIdleTTL)},
		store.Use{Now: now, IP: c.ip, UserAgent: truncate(c.r.UserAgent(), 512)}, s.event(c, store.EventTokenRefreshed))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil, s.refuse(c, store.EventRefreshRefused, ReasonUnknown, unauthenticated(contract.CodeUnauthenticated, "the refresh token is invalid", hdrInvalidToken))
	case errors.Is(err, store.ErrRefreshReused):
		// The store recorded the reuse (token.refresh_reuse) with the revocation.
		// RFC 9700 §4.14.2: a rotated token came back — it was stolen, or the
		// legitimate client raced itself. Either way the family is gone.
		s.logger.Warn("security event: refresh token reuse, session family revoked",
			zap.String("event", "refresh_token_reuse"), zap.String("session_id", res.Session.ID),
			zap.String("user_id", res.Session.UserID), zap.String("ip", c.ip))
		s.sessionsRevoked([]string{res.Session.ID})
		countReuse()
		return 0, nil, unauthenticated(contract.CodeTokenRevoked, "the refresh token was already used; the session has been ended", hdrInvalidToken)
	case errors.Is(err, store.ErrSessionInactive):
		return 0, nil, s.refuse(c, store.EventRefreshRefused, ReasonInactive, unauthenticated(contract.CodeTokenRevoked, "the refresh token has expired or its session has ended", hdrInvalidToken))
	case err != nil:
		return 0, nil, err
	}
	refreshed.Inc()
	sess := res.Session
	c.meta.UserID, c.meta.CompanyID = sess.UserID, sess.CompanyID
	if !res.Member && !res.Access.UserDisabled {
		// A platform admin's session in a company they are not a member of.
		if access, platform, err := s.companyAccess(c.ctx, sess.UserID, sess.CompanyID); err == nil && platform {
			res.Access, res.Member = access, true
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
	}
	if !res.Member || res.Access.UserDisabled || res.Access.Company.Disabled {
		reason := "membership_removed"
		switch {
		case res.Access.UserDisabled:
			reason = "user_disabled"
		case res.Member:
			reason = "company_disabled"
		}
		ev := s.event(c, store.EventSessionRevoked)
		ev.SubjectID, ev.Details = sess.ID, map[string]string{"reason": reason}
		if err := s.store.RevokeSession(c.ctx, sess.UserID, sess.ID, now, reason, ev); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
		s.sessionsRevoked([]string{sess.ID})
		if ce := s.refusals.CheckLine(zap.InfoLevel, "refresh refused: session ended", reason); ce != nil {
			ce.Write(zap.String("reason", reason), zap.String("session_id", sess.ID), zap.String("user_id", sess.UserID))
		}
		if res.Access.UserDisabled {
			return 0, nil, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken)
		}
		if res.Member {
			return 0, nil, errCompanyDisabled()
		}
		return 0, nil, errForbidden("you are no longer a member of this company")
	}
	pair, err := s.pair(sess, res.Access, rt, now)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, answerPair(c, pair, in.Cookie), nil
}

func (s *Service) handleSwitchCompany(c *call) (int, any, error) {
	claims, err := s.authenticate(c, false) // SwitchCompany checks the session atomically
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		CompanyID string `json:"company_id"`
		Cookie    bool   `json:"cookie"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.CompanyID == "" {
		return 0, nil, invalid("company_id", "company_id is required")
	}
	// One step reads the user's access to the company, checks it (member or
	// platform admin, user and company enabled) and switches: the roles the
	// tokens carry are those the switch was allowed on.
	now := s.clock.Now()
	rt, rtHash := newRefreshToken()
	ev := s.event(c, store.EventCompanySwitched)
	ev.CompanyID, ev.SubjectID, ev.Details = in.CompanyID, claims.SessionID, map[string]string{"from_company_id": claims.CompanyID}
	switchRefused := func(reason string, refusal error) (int, any, error) {
		return 0, nil, s.refuse(c, store.EventCompanySwitchRefused, reason, refusal, "company_id", in.CompanyID, "session_id", claims.SessionID)
	}
	res, err := s.store.SwitchCompany(c.ctx, claims.Subject, claims.SessionID, in.CompanyID,
		store.RefreshToken{Hash: rtHash, ExpiresAt: now.Add(s.cfg.RefreshIdleTTL)},
		store.Use{Now: now, IP: c.ip, UserAgent: truncate(c.r.UserAgent(), 512)}, ev)
	switch {
	case errors.Is(err, store.ErrNoAccess):
		switch a := res.Access; {
		case a.Company.ID == "" || (!res.Member && !res.PlatformAdmin):
			return switchRefused(ReasonNotMember, errForbidden("you are not a member of this company"))
		case a.UserDisabled:
			return switchRefused(ReasonUserDisabled, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken))
		default:
			return switchRefused(ReasonCompanyDisabled, errCompanyDisabled())
		}
	case errors.Is(err, store.ErrNotFound):
		return switchRefused(ReasonSessionEnded, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken))
	case err != nil:
		return 0, nil, err
	}
	c.meta.CompanyID = res.Session.CompanyID
	pair, err := s.pair(res.Session, res.Access, rt, now)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, answerPair(c, pair, in.Cookie), nil
}

// handleLogout revokes the caller's session (or all the user's sessions).
// It answers success once the store recorded the revocation, Redis or not
// (the relay delivers it to the edges), and 503 with Retry-After when the
// store could not record it. It is idempotent: the access token of a
// session that is already revoked (a logout answered but not yet heard by
// every edge, or whose answer was lost) may log out again, which delivers
// the revocation again instead of answering 401.
func (s *Service) handleLogout(c *call) (int, any, error) {
	claims, err := s.authenticate(c, false)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		All bool `json:"all"`
	}
	if err := decode(c, &in, true); err != nil {
		return 0, nil, err
	}
	sess, err := s.store.GetSession(c.ctx, claims.Subject, claims.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, s.refuse(c, store.EventBearerRefused, ReasonUnknownSession, errInvalidToken(), "session_id", claims.SessionID)
	}
	if err != nil {
		return 0, nil, s.errNotRecorded(c, err)
	}
	now := s.clock.Now()
	var ids []string
	already := !sess.RevokedAt.IsZero()
	if in.All {
		ev := s.event(c, store.EventLogoutAll)
		ev.SubjectID = claims.SessionID
		ids, err = s.store.RevokeUserSessions(c.ctx, claims.Subject, now, "logout_all", ev)
		if err != nil {
			return 0, nil, s.errNotRecorded(c, err)
		}
	} else if !already {
		ev := s.event(c, store.EventLogout)
		ev.SubjectID = claims.SessionID
		err = s.store.RevokeSession(c.ctx, claims.Subject, claims.SessionID, now, "logout", ev)
		switch {
		case errors.Is(err, store.ErrNotFound):
			already = true // revoked since we read it
		case err != nil:
			return 0, nil, s.errNotRecorded(c, err)
		default:
			ids = []string{claims.SessionID}
		}
	}
	s.sessionsRevoked(ids)
	if already {
		if err := s.redrive(c.ctx, []store.Revocation{{Kind: store.RevokedSession, SubjectID: claims.SessionID}}); err != nil {
			return 0, nil, s.errNotRecorded(c, err)
		}
		ids = append(ids, claims.SessionID)
	}
	s.logger.Info("logout", zap.String("user_id", claims.Subject), zap.Bool("all", in.All), zap.Int("sessions", len(ids)), zap.Bool("repeated", already))
	clearCookies(c.w)
	return http.StatusOK, map[string]any{"revoked_sessions": ids}, nil
}

func (s *Service) handleMe(c *call) (int, any, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return 0, nil, err
	}
	u, err := s.store.GetUser(c.ctx, claims.Subject)
	if err != nil {
		return 0, nil, err
	}
	ms, err := s.store.ListMemberships(c.ctx, claims.Subject)
	if err != nil {
		return 0, nil, err
	}
	views := make([]companyView, 0, len(ms))
	var current *companyView
	for _, m := range ms {
		v := viewCompany(m.Company, m.Roles)
		views = append(views, v)
		if m.Company.ID == claims.CompanyID {
			current = &v
		}
	}
	return http.StatusOK, map[string]any{
		"user": viewUser(u), "companies": views, "company": current, "session_id": claims.SessionID,
		"roles": claims.Roles, "scope": claims.Scope, "plan": claims.Plan,
	}, nil
}

func (s *Service) handleListSessions(c *call) (int, any, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.store.ListSessions(c.ctx, claims.Subject, s.clock.Now())
	if err != nil {
		return 0, nil, err
	}
	out := make([]sessionView, 0, len(list))
	for _, ss := range list {
		out = append(out, sessionView{ID: ss.ID, CompanyID: ss.CompanyID, Device: Device(ss.UserAgent), UserAgent: ss.UserAgent,
			IP: ss.IP, CreatedAt: ss.CreatedAt, LastUsedAt: ss.LastUsedAt, ExpiresAt: ss.ExpiresAt, Current: ss.ID == claims.SessionID})
	}
	return http.StatusOK, out, nil
}

func (s *Service) handleRevokeSession(c *call) (int, any, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventSessionRevoked)
	ev.SubjectID, ev.Details = c.param, map[string]string{"reason": "revoked_by_user"}
	err = s.store.RevokeSession(c.ctx, claims.Subject, c.param, s.clock.Now(), "revoked_by_user", ev)
	if errors.Is(err, store.ErrNotFound) {
		// Idempotent, like logout: a session of the user that is already
		// revoked is delivered again; one that is not the user's is not found.
		sess, gerr := s.store.GetSession(c.ctx, claims.Subject, c.param)
		switch {
		case errors.Is(gerr, store.ErrNotFound) || (gerr == nil && sess.RevokedAt.IsZero()):
			return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such session")
		case gerr != nil:
			return 0, nil, s.errNotRecorded(c, gerr)
		}
		if err := s.redrive(c.ctx, []store.Revocation{{Kind: store.RevokedSession, SubjectID: c.param}}); err != nil {
			return 0, nil, s.errNotRecorded(c, err)
		}
		return http.StatusOK, map[string]any{"id": c.param, "revoked": true}, nil
	}
	if err != nil {
		return 0, nil, s.errNotRecorded(c, err)
	}
	s.sessionsRevoked([]string{c.param})
	s.logger.Info("session revoked", zap.String("user_id", claims.Subject), zap.String("session_id", c.param))
	return http.StatusOK, map[string]any{"id": c.param, "revoked": true}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
