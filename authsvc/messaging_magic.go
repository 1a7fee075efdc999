package authsvc

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/mail"
)

// Magic links: POST /magic-link {email} answers 202 at once, the same for
// every address; a sender then looks the address up and, for an active
// account whose domain does not require SSO, mails
// PublicURL/login#magic=TOKEN (a fragment: never in a server log or a
// Referer; the hosted page POSTs it). The token is 256 random bits, kept
// as its SHA-256 for MagicLinkTTL, and taken once by POST
// /magic-link/verify, which ends in finishLogin.

// Keys of the magic-link state in the codeBox and the counters.
const (
	keyMagicLink     = "magic:link:" // + hex SHA-256 of the token → "<user id> <expiry unix ms>"
	keyMagicLinkUsed = "magic:used:" // + hex SHA-256: a token that was taken (the audit's already_used)
)

// magicJob is one magic-link request waiting for a sender.
type magicJob struct {
	email string
	sso   bool        // the domain signs in through its identity provider
	ev    store.Event // the request's audit fields (time, ip, agent, request id)
}

func (s *Service) handleMagicLink(c *call) (int, any, error) {
	if s.msg.mail == nil {
		return 0, nil, errMailOff()
	}
	var in struct {
		Email string `json:"email"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	name, err := loginName("email", in.Email)
	if err != nil {
		return 0, nil, err
	}
	email := name.Email
	// The same counters for every address, known or not.
	for _, lim := range []struct {
		kind, key string
		n         int64
	}{{"ip", attemptKey("magic_ip", c.ip), magicLinkIPLimit}, {"address", attemptKey("magic_address", email), magicLinkAddressLimit}} {
		ok, retry, err := s.counters.Reserve(c.ctx, lim.key, lim.n, s.cfg.LoginWindow)
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			ev := s.event(c, store.EventMagicLinkThrottled)
			ev.Details = map[string]string{"email": email, "limit": lim.kind}
			if err := s.record(c.ctx, ev); err != nil {
				return 0, nil, err
			}
			if ce := s.refusals.CheckLine(zap.WarnLevel, "magic link throttled", "magic_link_throttled"); ce != nil {
				ce.Write(zap.String("limit", lim.kind), zap.String("ip", c.ip))
			}
			return 0, nil, errRateLimited(retry)
		}
	}
	// Home-realm discovery depends on the domain alone: it tells nothing
	// about the account.
	_, sso, err := s.ssoRequired(c, email)
	if err != nil {
		return 0, nil, err
	}
	job := magicJob{email: email, sso: sso, ev: s.event(c, "")}
	select {
	case s.msg.jobs <- job:
	default:
		// A full queue: the mail is not sent, the answer is the same.
		if ce := s.refusals.CheckLine(zap.WarnLevel, "magic link queue full", "magic_link_queue_full"); ce != nil {
			ce.Write(zap.String("ip", c.ip))
		}
	}
	return http.StatusAccepted, map[string]any{"sent": true, "expires_in": int64(MagicLinkTTL / time.Second)}, nil
}

func (s *Service) magicLinkWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.msg.jobs:
			s.sendMagicLink(j)
		}
	}
}

// sendMagicLink serves one request: a link for an account that may use
// one, a record of why not for any other address.
func (s *Service) sendMagicLink(j magicJob) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout+mail.DefaultTimeout)
	defer cancel()
	ev := j.ev
	suppress := func(userID, reason string) {
		ev.Type, ev.ActorID, ev.Details = store.EventMagicLinkSuppressed, userID, map[string]string{"email": j.email, "reason": reason}
		if err := s.record(ctx, ev); err != nil {
			s.logger.Error("magic link: audit record", zap.Error(err))
		}
	}
	if j.sso {
		suppress("", "sso_required")
		return
	}
	u, err := s.store.GetUserByEmail(ctx, j.email)
	if errors.Is(err, store.ErrNotFound) {
		suppress("", "unknown_user")
		return
	}
	if err != nil {
		s.logger.Warn("magic link: user lookup failed", zap.Error(err))
		return
	}
	if u.Disabled {
		suppress(u.ID, ReasonUserDisabled)
		return
	}
	token := randomSecret()
	h := hex.EncodeToString(hashSecret(token))
	expires := s.clock.Now().Add(MagicLinkTTL)
	if err := s.msg.box.Put(ctx, keyMagicLink+h, []byte(u.ID+" "+strconv.FormatInt(expires.UnixMilli(), 10)), MagicLinkTTL); err != nil {
		s.logger.Warn("magic link: store the token", zap.String("user_id", u.ID), zap.Error(err))
		return
	}
	link := s.cfg.PublicURL + "/login#magic=" + token
	if err := s.msg.mail.Send(ctx, s.magicLinkMail(u, link)); err != nil {
		_ = s.msg.box.Delete(ctx, keyMagicLink+h)
		s.logSendFailure("magic link", u.ID, err)
		suppress(u.ID, "send_failed")
		return
	}
	ev.Type, ev.ActorID, ev.SubjectID = store.EventMagicLinkSent, u.ID, u.ID
	if err := s.record(ctx, ev); err != nil {
		s.logger.Error("magic link: audit record", zap.Error(err))
	}
	s.logger.Info("magic link sent", zap.String("user_id", u.ID))
}

func errMagicLink() error {
	return unauthenticated(contract.CodeUnauthenticated, "the sign-in link is invalid, expired or was already used; ask for a new one", hdrLogin)
}

// validMagicToken: 32 bytes in unpadded base64url.
func validMagicToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil
}

func (s *Service) handleMagicLinkVerify(c *call) (int, any, error) {
	if s.msg.mail == nil {
		return 0, nil, errMailOff()
	}
	var in struct {
		Token string `json:"token"`
		// DeviceToken is a trusted device's credential (API clients; a
		// browser sends the device cookie).
		DeviceToken string `json:"device_token"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if in.Token == "" {
		return 0, nil, invalid("token", "token is required")
	}
	if !validMagicToken(in.Token) {
		return 0, nil, s.refuse(c, store.EventMagicLinkFailed, ReasonMalformed, errMagicLink())
	}
	h := hex.EncodeToString(hashSecret(in.Token))
	val, ok, err := s.msg.box.Take(c.ctx, keyMagicLink+h)
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		used, err := s.counters.Marked(c.ctx, keyMagicLinkUsed+h)
		if err != nil {
			return 0, nil, err
		}
		reason := ReasonUnknown // never sent, or expired and gone
		if used {
			reason = ReasonAlreadyUsed
		}
		return 0, nil, s.refuse(c, store.EventMagicLinkFailed, reason, errMagicLink())
	}
	if _, err := s.counters.MarkOnce(c.ctx, keyMagicLinkUsed+h, MagicLinkTTL+time.Minute); err != nil {
		return 0, nil, err
	}
	userID, exp, _ := strings.Cut(string(val), " ")
	ms, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !s.clock.Now().Before(time.UnixMilli(ms)) {
		c.meta.UserID = userID
		return 0, nil, s.refuse(c, store.EventMagicLinkFailed, ReasonExpired, errMagicLink())
	}
	c.meta.UserID = userID
	u, err := s.store.GetUser(c.ctx, userID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, nil, err
	}
	if err != nil || u.Disabled {
		return 0, nil, s.refuse(c, store.EventMagicLinkFailed, ReasonUserDisabled, errMagicLink())
	}
	// The domain may have moved to SSO since the link was sent.
	if _, sso, err := s.ssoRequired(c, u.Email); err != nil {
		return 0, nil, err
	} else if sso {
		return 0, nil, s.refuse(c, store.EventMagicLinkFailed, "sso_required", errMagicLink())
	}
	return s.finishLogin(c, loginAttempt{user: u, first: FirstMagicLink, deviceToken: s.deviceToken(c, in.DeviceToken)})
}
