package authsvc

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/sms"
)

// One-time codes by mail or SMS: a second factor at login (POST
// /mfa/challenge sends one for a pending login token, POST /mfa/verify
// checks it) and the proof of an enrolment (/mfa/{email,sms}/enroll sends
// one, …/confirm checks it). A code is 6 random digits, sealed under the
// master key in the codeBox for MessageCodeTTL under its purpose (the
// login token's id and the method, or the enrolment), checked in constant
// time and deleted by the one check that accepts it. Checks share the
// TOTP attempt counter of the user (TOTPAttemptLimit per TOTPWindow,
// successes given back); sends are limited per login token and per user.

const (
	keyMessageCode = "mfa:code:"  // + user id + ":" + purpose → sealed code
	keyCodeSends   = "mfa:sends:" // + "login:" + token id, or "user:" + user id
)

// codePurpose names what a code proves.
func loginCodePurpose(lc *loginClaims, method string) string { return "login:" + lc.ID + ":" + method }
func enrollCodePurpose(method string) string                 { return "enroll:" + method }

func newMessageCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("authsvc: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%06d", n.Int64())
}

func codeSealKid(userID, purpose string) string { return "mfa-code:" + userID + ":" + purpose }

// reserveCodeSend counts one code sent for the user (and the login token,
// when there is one); a 429 beyond the limits, audited.
func (s *Service) reserveCodeSend(c *call, userID string, lc *loginClaims, method string) error {
	limits := []struct {
		key    string
		n      int64
		window time.Duration
	}{{keyCodeSends + "user:" + userID, codeSendsPerUser, codeSendUserWindow}}
	if lc != nil {
		limits = append([]struct {
			key    string
			n      int64
			window time.Duration
		}{{keyCodeSends + "login:" + lc.ID, codeSendsPerLogin, LoginTokenTTL + time.Minute}}, limits...)
	}
	for _, l := range limits {
		ok, retry, err := s.counters.Reserve(c.ctx, l.key, l.n, l.window)
		if err != nil {
			return err
		}
		if !ok {
			ev := s.event(c, store.EventMFAThrottled)
			ev.ActorID, ev.Details = userID, map[string]string{"method": method, "step": "send"}
			if err := s.record(c.ctx, ev); err != nil {
				return err
			}
			return errRateLimited(retry)
		}
	}
	return nil
}

// issueCode makes a code for the purpose, replacing the one before.
func (s *Service) issueCode(c *call, userID, purpose string) (string, error) {
	code := newMessageCode()
	sealed := s.sealer.Seal(codeSealKid(userID, purpose), []byte(code))
	if err := s.msg.box.Put(c.ctx, keyMessageCode+userID+":"+purpose, sealed, MessageCodeTTL); err != nil {
		return "", err
	}
	return code, nil
}

// deliverCode sends code to the user's address (method email) or number
// (sms); what it answers with is the masked destination.
func (s *Service) deliverCode(c *call, u store.User, method, phone, code string) (string, error) {
	switch method {
	case MethodEmail:
		if err := s.msg.mail.Send(c.ctx, s.codeMail(u, code)); err != nil {
			s.logSendFailure("email code", u.ID, err)
			return "", errSendFailed()
		}
		return maskEmail(u.Email), nil
	default:
		body := fmt.Sprintf("Your %s code is %s. It expires in %d minutes. Never share it.", s.cfg.Issuer, code, int(MessageCodeTTL/time.Minute))
		if host := s.publicHost(); host != "" {
			body += "\n\n@" + host + " #" + code // WebOTP: the browser may offer the code to that origin only
		}
		if err := s.msg.sms.Send(c.ctx, phone, body); err != nil {
			s.logSendFailure("sms code", u.ID, err)
			return "", errSendFailed()
		}
		return maskPhone(phone), nil
	}
}

// checkMessageCode verifies a code of the user for purpose: throttled
// with the TOTP attempts, constant-time, single use; failures audited
// (EventMFAFailed, reason) and answered alike.
func (s *Service) checkMessageCode(c *call, userID, method, purpose, code string) error {
	code = strings.TrimSpace(code)
	if len(code) != MessageCodeDigits || strings.Trim(code, "0123456789") != "" {
		c.meta.UserID = userID
		return s.refuse(c, store.EventMFAFailed, ReasonMalformedCode, invalid("code", "code is the 6-digit code we sent"), "method", method)
	}
	attempts := contract.RedisKeyTOTPAttempts + userID
	ok, retry, err := s.counters.Reserve(c.ctx, attempts, s.cfg.TOTPAttemptLimit, s.cfg.TOTPWindow)
	if err != nil {
		return err
	}
	if !ok {
		ev := s.event(c, store.EventMFAThrottled)
		ev.ActorID, ev.Details = userID, map[string]string{"method": method}
		if err := s.record(c.ctx, ev); err != nil {
			return err
		}
		if ce := s.refusals.CheckLine(zap.WarnLevel, "second factor throttled", "throttled"); ce != nil {
			ce.Write(zap.String("user_id", userID), zap.String("ip", c.ip))
		}
		return errRateLimited(retry)
	}
	fail := func(reason string) error {
		ev := s.event(c, store.EventMFAFailed)
		ev.ActorID, ev.Details = userID, map[string]string{"reason": reason, "method": method}
		if err := s.record(c.ctx, ev); err != nil {
			return err
		}
		if ce := s.refusals.CheckLine(zap.InfoLevel, "second factor refused", reason); ce != nil {
			ce.Write(zap.String("user_id", userID), zap.String("reason", reason), zap.String("ip", c.ip))
		}
		return errBadCode()
	}
	key := keyMessageCode + userID + ":" + purpose
	sealed, found, err := s.msg.box.Get(c.ctx, key)
	if err != nil {
		return err
	}
	if !found {
		return fail("no_code") // never sent, expired, or already used
	}
	want, err := s.sealer.Open(codeSealKid(userID, purpose), sealed)
	if err != nil {
		return fail("no_code") // sealed under another master key
	}
	if subtle.ConstantTimeCompare(want, []byte(code)) != 1 {
		return fail("wrong_code")
	}
	first, err := s.msg.box.DeleteIf(c.ctx, key, sealed)
	if err != nil {
		return err
	}
	if !first {
		return fail("code_replayed") // a parallel check took it
	}
	return s.counters.Refund(c.ctx, attempts)
}

// verifyMessageCode checks a code sent for the pending login lc by method
// (MethodEmail or MethodSMS): nil when it is right, else the refusal
// (audited, throttled).
func (s *Service) verifyMessageCode(c *call, u store.User, lc *loginClaims, method, code string) error {
	return s.checkMessageCode(c, u.ID, method, loginCodePurpose(lc, method), code)
}

// smsNumber is the user's confirmed (or, for enrolment, pending) number.
func (s *Service) smsNumber(f store.Factor) (string, error) {
	b, err := s.sealer.Open("sms-phone:"+f.UserID, f.SealedPhone)
	if err != nil {
		return "", errors.New("the phone number does not open under this master key")
	}
	return string(b), nil
}

// handleMFAChallenge sends a code for a pending login token by one of its
// methods (email or sms).
func (s *Service) handleMFAChallenge(c *call) (int, any, error) {
	var in struct {
		LoginToken string `json:"login_token"`
		Method     string `json:"method"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.LoginToken == "" {
		return 0, nil, invalid("login_token", "login_token is required")
	}
	if in.Method != MethodEmail && in.Method != MethodSMS {
		return 0, nil, invalid("method", "method must be email or sms")
	}
	lc, u, err := s.pendingLogin(c, in.LoginToken)
	if err != nil {
		return 0, nil, err
	}
	if allowed := lc.methods(); !slices.Contains(allowed, in.Method) {
		return 0, nil, invalid("method", "this login can be completed with: "+strings.Join(allowed, ", "))
	}
	if err := s.loginSpent(c, lc); err != nil {
		return 0, nil, err
	}
	phone := ""
	switch in.Method {
	case MethodEmail:
		// an enrolled email factor, or a risk step-up: the account's address
		if s.msg.mail == nil {
			return 0, nil, errMailOff()
		}
	case MethodSMS:
		if s.msg.sms == nil {
			return 0, nil, errSMSOff()
		}
		f, err := s.store.GetFactor(c.ctx, u.ID, store.FactorSMS)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
		if err != nil || !f.Active() { // turned off since the login: log in again
			return 0, nil, s.refuse(c, store.EventMFAFailed, ReasonMFAOff, unauthenticated(contract.CodeUnauthenticated, "the login token is invalid or expired; log in again", hdrInvalidToken), "method", MethodSMS)
		}
		if phone, err = s.smsNumber(f); err != nil {
			return 0, nil, err
		}
	}
	if err := s.reserveCodeSend(c, u.ID, lc, in.Method); err != nil {
		return 0, nil, err
	}
	code, err := s.issueCode(c, u.ID, loginCodePurpose(lc, in.Method))
	if err != nil {
		return 0, nil, err
	}
	dest, err := s.deliverCode(c, u, in.Method, phone, code)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFACodeSent)
	ev.ActorID, ev.Details = u.ID, map[string]string{"method": in.Method, "purpose": "login"}
	if err := s.record(c.ctx, ev); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"sent": true, "method": in.Method, "destination": dest,
		"expires_in": int64(min(MessageCodeTTL, max(0, time.Unix(lc.ExpiresAt, 0).Sub(s.clock.Now()))) / time.Second),
	}, nil
}

// enrollFactor starts an email or SMS enrolment of the caller: a pending
// factor and a code to its destination.
func (s *Service) enrollFactor(c *call, u store.User, kind, phone string) (int, any, error) {
	f := store.Factor{UserID: u.ID, Kind: kind, CreatedAt: s.clock.Now()}
	if kind == store.FactorSMS {
		f.SealedPhone, f.PhoneMasked = s.sealer.Seal("sms-phone:"+u.ID, []byte(phone)), maskPhone(phone)
	}
	if err := s.reserveCodeSend(c, u.ID, nil, kind); err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFAEnrollStarted)
	ev.SubjectID, ev.Details = u.ID, map[string]string{"method": kind}
	err := s.store.PutPendingFactor(c.ctx, f, ev)
	if errors.Is(err, store.ErrConflict) {
		return 0, nil, errConflict(kind + " codes are already on; turn them off first (DELETE /api/v1/auth/mfa/" + kind + ")")
	}
	if err != nil {
		return 0, nil, err
	}
	code, err := s.issueCode(c, u.ID, enrollCodePurpose(kind))
	if err != nil {
		return 0, nil, err
	}
	dest, err := s.deliverCode(c, u, kind, phone, code)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"sent": true, "method": kind, "destination": dest, "expires_in": int64(MessageCodeTTL / time.Second), "confirmed": false,
	}, nil
}

// confirmFactor activates the caller's pending factor with the code sent to it.
func (s *Service) confirmFactor(c *call, kind string) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	var in codeInput
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	f, err := s.store.GetFactor(c.ctx, u.ID, kind)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no " + kind + " enrolment is pending: start one with POST /api/v1/auth/mfa/" + kind + "/enroll")
	}
	if err != nil {
		return 0, nil, err
	}
	if f.Active() {
		return 0, nil, errConflict(kind + " codes are already on")
	}
	if err := s.checkMessageCode(c, u.ID, kind, enrollCodePurpose(kind), in.Code); err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFAEnrolled)
	ev.SubjectID, ev.Details = u.ID, map[string]string{"method": kind}
	err = s.store.ConfirmFactor(c.ctx, u.ID, kind, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) { // confirmed or removed meanwhile
		return 0, nil, errConflict("the enrolment changed meanwhile; start again")
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info(kind+" codes enabled", zap.String("user_id", u.ID))
	out := map[string]any{"enabled": true, "method": kind}
	if kind == store.FactorSMS {
		out["phone"] = f.PhoneMasked
	} else {
		out["email"] = maskEmail(u.Email)
	}
	return http.StatusOK, out, nil
}

// deleteFactor turns the caller's email or SMS factor off (a pending
// enrolment too).
func (s *Service) deleteFactor(c *call, kind string) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	if err := decode(c, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFADisabled)
	ev.SubjectID, ev.Details = u.ID, map[string]string{"method": kind}
	err = s.store.DeleteFactor(c.ctx, u.ID, kind, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound(kind + " codes are not on")
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info(kind+" codes disabled", zap.String("user_id", u.ID))
	return http.StatusOK, map[string]any{"enabled": false, "method": kind}, nil
}

func (s *Service) handleEmailEnroll(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	if err := decode(c, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	if s.msg.mail == nil {
		return 0, nil, errMailOff()
	}
	return s.enrollFactor(c, u, store.FactorEmail, "")
}

func (s *Service) handleEmailConfirm(c *call) (int, any, error) {
	return s.confirmFactor(c, store.FactorEmail)
}
func (s *Service) handleEmailDelete(c *call) (int, any, error) {
	return s.deleteFactor(c, store.FactorEmail)
}

func (s *Service) handleSMSEnroll(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Phone string `json:"phone"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	phone := normalizePhone(in.Phone)
	if !sms.ValidNumber(phone) {
		return 0, nil, invalid("phone", "phone must be an international number in E.164 form, such as +14155550123")
	}
	if s.msg.sms == nil {
		return 0, nil, errSMSOff()
	}
	return s.enrollFactor(c, u, store.FactorSMS, phone)
}

func (s *Service) handleSMSConfirm(c *call) (int, any, error) {
	return s.confirmFactor(c, store.FactorSMS)
}
func (s *Service) handleSMSDelete(c *call) (int, any, error) {
	return s.deleteFactor(c, store.FactorSMS)
}
