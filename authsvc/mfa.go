package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Recovery codes: RecoveryCodeCount single-use codes of 80 random bits,
// shown once when TOTP is confirmed, as `xxxx-xxxx-xxxx-xxxx` (lower-case
// base32). Only SHA-256 of the user id and the normalised code is stored:
// 80 bits leave no dictionary to search.
const (
	RecoveryCodeCount = 10
	recoveryCodeBytes = 10
)

var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newRecoveryCode() string {
	b := make([]byte, recoveryCodeBytes)
	_, _ = rand.Read(b)
	s := recoveryEncoding.EncodeToString(b) // 16 characters
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// normalizeRecoveryCode accepts any case, spaces and dashes; "" if it can't be one.
func normalizeRecoveryCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch {
		case r == '-' || r == ' ':
		case (r >= 'a' && r <= 'z') || (r >= '2' && r <= '7'):
			b.WriteRune(r)
		default:
			return ""
		}
	}
	if b.Len() != 16 {
		return ""
	}
	return b.String()
}

func recoveryHash(userID, normalized string) []byte {
	h := sha256.Sum256([]byte("erpgate-recovery-code:" + userID + ":" + normalized))
	return h[:]
}

// totpFactor is the default SecondFactor: a confirmed TOTP enrolment.
type totpFactor struct{ s *Service }

func (f totpFactor) Required(ctx context.Context, u store.User) (bool, error) {
	t, err := f.s.store.GetTOTP(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return t.Active(), nil
}

// sealTOTP seals a TOTP secret like a signing key, bound to its user.
func (s *Service) sealTOTP(userID string, secret []byte) []byte {
	return s.sealer.Seal("totp:"+userID, secret)
}

func (s *Service) openTOTP(t store.TOTP) ([]byte, error) {
	secret, err := s.sealer.Open("totp:"+t.UserID, t.SealedSecret)
	if err != nil {
		return nil, errors.New("totp secret does not open under this master key")
	}
	return secret, nil
}

func errBadCode() error {
	return unauthenticated(contract.CodeUnauthenticated, "the code is invalid or was already used", hdrLogin)
}

// checkCode verifies a second-factor code of the user: a TOTP code, or when
// allowRecovery a recovery code (consumed). Every attempt is reserved on the
// user's counter before it is checked — across sessions, addresses and
// instances, atomically, so parallel guesses can't exceed
// TOTPAttemptLimit per TOTPWindow; a success gives its attempt back. A TOTP
// code is accepted once: its time step is marked used (in Redis when
// configured) for longer than it could be valid. Failures and throttling
// are audited here; the caller records the success with its own change.
func (s *Service) checkCode(c *call, t store.TOTP, code string, allowRecovery bool) (method string, err error) {
	code = strings.TrimSpace(code)
	isTOTP := len(code) == TOTPDigits && strings.Trim(code, "0123456789") == ""
	recovery := ""
	if !isTOTP && allowRecovery {
		recovery = normalizeRecoveryCode(code)
	}
	if !isTOTP && recovery == "" {
		msg := "code is the 6-digit code of your authenticator app"
		if allowRecovery {
			msg += " or a recovery code"
		}
		c.meta.UserID = t.UserID
		return "", s.refuse(c, store.EventMFAFailed, ReasonMalformedCode, invalid("code", msg))
	}
	key := contract.RedisKeyTOTPAttempts + t.UserID
	ok, retry, err := s.counters.Reserve(c.ctx, key, s.cfg.TOTPAttemptLimit, s.cfg.TOTPWindow)
	if err != nil {
		return "", err
	}
	if !ok {
		ev := s.event(c, store.EventMFAThrottled)
		ev.ActorID = t.UserID
		if err := s.record(c.ctx, ev); err != nil {
			return "", err
		}
		if ce := s.refusals.CheckLine(zap.WarnLevel, "second factor throttled", "throttled"); ce != nil {
			ce.Write(zap.String("user_id", t.UserID), zap.String("ip", c.ip))
		}
		return "", errRateLimited(retry)
	}
	fail := func(reason string) (string, error) {
		ev := s.event(c, store.EventMFAFailed)
		ev.ActorID, ev.Details = t.UserID, map[string]string{"reason": reason}
		if err := s.record(c.ctx, ev); err != nil {
			return "", err
		}
		if ce := s.refusals.CheckLine(zap.InfoLevel, "second factor refused", reason); ce != nil {
			ce.Write(zap.String("user_id", t.UserID), zap.String("reason", reason), zap.String("ip", c.ip))
		}
		return "", errBadCode()
	}
	now := s.clock.Now()
	if isTOTP {
		secret, err := s.openTOTP(t)
		if err != nil {
			return "", err
		}
		step, match := totpMatch(secret, code, now)
		if !match {
			return fail("wrong_code")
		}
		ttl := time.Duration(2*TOTPSkew+2) * TOTPPeriod
		first, err := s.counters.MarkOnce(c.ctx, contract.RedisKeyTOTPReplay+t.UserID+":"+strconv.FormatInt(step, 10), ttl)
		if err != nil {
			return "", err
		}
		if !first {
			return fail("code_replayed")
		}
		method = "totp"
	} else {
		ev := s.event(c, store.EventMFARecoveryUsed)
		ev.ActorID = t.UserID
		left, err := s.store.UseRecoveryCode(c.ctx, t.UserID, recoveryHash(t.UserID, recovery), now, ev)
		if errors.Is(err, store.ErrNotFound) {
			return fail("wrong_recovery_code")
		}
		if err != nil {
			return "", err
		}
		s.logger.Info("recovery code used", zap.String("user_id", t.UserID), zap.Int("left", left))
		method = "recovery_code"
	}
	if err := s.counters.Refund(c.ctx, key); err != nil {
		return "", err
	}
	return method, nil
}

// mfaUser authenticates the caller (an access token of an active session)
// and returns their user record.
func (s *Service) mfaUser(c *call) (*AccessClaims, store.User, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return nil, store.User{}, err
	}
	u, err := s.store.GetUser(c.ctx, claims.Subject)
	if err != nil {
		return nil, store.User{}, err
	}
	if u.Disabled {
		return nil, store.User{}, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken)
	}
	return claims, u, nil
}

func (s *Service) handleTOTPEnroll(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	if err := decode(c, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	key, secret, err := newTOTPKey(s.cfg.Issuer, u.Email)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFAEnrollStarted)
	ev.SubjectID = u.ID
	err = s.store.PutPendingTOTP(c.ctx, store.TOTP{UserID: u.ID, SealedSecret: s.sealTOTP(u.ID, secret), CreatedAt: s.clock.Now()}, ev)
	if errors.Is(err, store.ErrConflict) {
		return 0, nil, errConflict("TOTP is already on; turn it off first (DELETE /api/v1/auth/mfa/totp)")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"secret":      key.Secret(),
		"otpauth_uri": key.URL(),
		"algorithm":   key.Algorithm().String(),
		"digits":      key.Digits().Length(),
		"period":      key.Period(),
		"confirmed":   false,
	}, nil
}

type codeInput struct {
	Code string `json:"code"`
}

func (s *Service) handleTOTPConfirm(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	var in codeInput
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	t, err := s.store.GetTOTP(c.ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no TOTP enrolment is pending: start one with POST /api/v1/auth/mfa/totp/enroll")
	}
	if err != nil {
		return 0, nil, err
	}
	if t.Active() {
		return 0, nil, errConflict("TOTP is already on")
	}
	if _, err := s.checkCode(c, t, in.Code, false); err != nil {
		return 0, nil, err
	}
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		codes[i] = newRecoveryCode()
		hashes[i] = recoveryHash(u.ID, normalizeRecoveryCode(codes[i]))
	}
	ev := s.event(c, store.EventMFAEnrolled)
	ev.SubjectID, ev.Details = u.ID, map[string]string{"recovery_codes": strconv.Itoa(RecoveryCodeCount)}
	err = s.store.ConfirmTOTP(c.ctx, u.ID, hashes, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) { // confirmed or replaced meanwhile
		return 0, nil, errConflict("the enrolment changed meanwhile; start again")
	}
	if err != nil {
		return 0, nil, err
	}
	s.logger.Info("totp enabled", zap.String("user_id", u.ID))
	return http.StatusOK, map[string]any{"enabled": true, "recovery_codes": codes}, nil
}

func (s *Service) handleTOTPDelete(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	var in codeInput
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	t, err := s.store.GetTOTP(c.ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !t.Active()) {
		if err == nil { // a pending enrolment is simply dropped
			ev := s.event(c, store.EventMFADisabled)
			ev.SubjectID, ev.Details = u.ID, map[string]string{"pending": "true"}
			if err := s.store.DeleteTOTP(c.ctx, u.ID, ev); err != nil && !errors.Is(err, store.ErrNotFound) {
				return 0, nil, err
			}
		}
		return 0, nil, errNotFound("TOTP is not on")
	}
	if err != nil {
		return 0, nil, err
	}
	method, err := s.checkCode(c, t, in.Code, true)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventMFADisabled)
	ev.SubjectID, ev.Details = u.ID, map[string]string{"method": method}
	if err := s.store.DeleteTOTP(c.ctx, u.ID, ev); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, nil, err
	}
	s.logger.Info("totp disabled", zap.String("user_id", u.ID))
	return http.StatusOK, map[string]any{"enabled": false}, nil
}
