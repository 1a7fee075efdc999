package authsvc

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/mail"
	"github.com/erpgate/erpgate/internal/sms"
)

// Mail and SMS: magic links (messaging_magic.go), email and SMS codes as
// second factors (messaging_codes.go). Owned by the messaging work
// (issue #17).
//
// Short-lived secrets are never kept in the clear: a magic-link token is
// kept as its SHA-256, a one-time code sealed under the master key, both in
// the codeBox (Redis with a TTL when configured, else in process) and
// consumed atomically, once. A phone number is sealed in the store.

// Lifetimes and limits of the messaging work.
const (
	// MagicLinkTTL is how long a mailed sign-in link works (once).
	MagicLinkTTL = 10 * time.Minute
	// MessageCodeTTL is how long a code sent by mail or SMS works (once;
	// a login code no longer than its login token).
	MessageCodeTTL = 10 * time.Minute
	// MessageCodeDigits is the length of a code sent by mail or SMS.
	MessageCodeDigits = 6

	// magic-link requests per address and per client address per LoginWindow
	magicLinkAddressLimit = 5
	magicLinkIPLimit      = 30
	// codes sent per pending login token (its lifetime) and per user per hour
	codeSendsPerLogin  = 3
	codeSendsPerUser   = 10
	codeSendUserWindow = time.Hour

	// the magic-link mail queue and its senders
	magicLinkQueue   = 1024
	magicLinkWorkers = 4
)

// messagingRoutes are the magic-link, email/SMS enrolment and challenge endpoints.
var messagingRoutes = map[string]handlerFunc{
	"POST /api/v1/auth/magic-link":        (*Service).handleMagicLink,
	"POST /api/v1/auth/magic-link/verify": (*Service).handleMagicLinkVerify,
	"POST /api/v1/auth/mfa/email/enroll":  (*Service).handleEmailEnroll,
	"POST /api/v1/auth/mfa/email/confirm": (*Service).handleEmailConfirm,
	"DELETE /api/v1/auth/mfa/email":       (*Service).handleEmailDelete,
	"POST /api/v1/auth/mfa/sms/enroll":    (*Service).handleSMSEnroll,
	"POST /api/v1/auth/mfa/sms/confirm":   (*Service).handleSMSConfirm,
	"DELETE /api/v1/auth/mfa/sms":         (*Service).handleSMSDelete,
	"POST /api/v1/auth/mfa/challenge":     (*Service).handleMFAChallenge,
}

// messagingState is the messaging feature's state in the Service.
type messagingState struct {
	mail *mail.Sender // nil: mail is off
	sms  *sms.Sender  // nil: SMS is off
	box  codeBox
	// jobs are the magic-link requests waiting for a sender: the request
	// is answered before the address is even looked up, so that every
	// address gets the same answer in the same time.
	jobs chan magicJob
}

func (s *Service) initMessaging() error {
	if rc, ok := s.counters.(*redisCounters); ok {
		s.msg.box = &redisBox{rdb: rc.rdb, prefix: rc.prefix}
	} else {
		s.msg.box = newMemBox(s.clock)
	}
	if s.cfg.SMTPURL != "" {
		m, err := mail.New(s.cfg.SMTPURL, s.cfg.SMTPFrom)
		if err != nil {
			return fmt.Errorf("smtp_url/smtp_from: %w", err)
		}
		s.msg.mail = m
		s.msg.jobs = make(chan magicJob, magicLinkQueue)
		for range magicLinkWorkers {
			s.wg.Add(1)
			go s.magicLinkWorker()
		}
	}
	if s.cfg.SMSURL != "" {
		p, err := sms.New(s.cfg.SMSURL)
		if err != nil {
			return fmt.Errorf("sms_url: %w", err)
		}
		s.msg.sms = p
	}
	return nil
}

func errMailOff() error {
	return contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, "sign-in by mail is not configured on this server")
}

func errSMSOff() error {
	return contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, "SMS codes are not configured on this server")
}

func errSendFailed() error {
	return contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, "the code could not be sent; try again later")
}

// emailFactor reports whether the user completes logins with a code by mail.
func (s *Service) emailFactor(c *call, u store.User) (string, bool, error) {
	on, err := s.factorOn(c, u, store.FactorEmail)
	return MethodEmail, on, err
}

// smsFactor reports whether the user completes logins with a code by SMS.
func (s *Service) smsFactor(c *call, u store.User) (string, bool, error) {
	on, err := s.factorOn(c, u, store.FactorSMS)
	return MethodSMS, on, err
}

func (s *Service) factorOn(c *call, u store.User, kind string) (bool, error) {
	f, err := s.store.GetFactor(c.ctx, u.ID, kind)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return f.Active(), nil
}

// maskEmail shows the first character of the local part and the domain:
// a•••@acme.test.
func maskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "•••"
	}
	r := []rune(addr[:at])
	return string(r[0]) + "•••" + addr[at:]
}

// maskPhone shows the + and the first digit (the country's first) and the
// last two: +1•••••••••67.
func maskPhone(n string) string {
	if len(n) < 5 {
		return "•••"
	}
	return n[:2] + strings.Repeat("•", len(n)-4) + n[len(n)-2:]
}

// normalizePhone takes the spaces, dots, dashes and parentheses people
// write out of a number; the result must be E.164.
func normalizePhone(raw string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\u00a0':
			return -1
		}
		return r
	}, strings.TrimSpace(raw))
}

// publicHost is the host of PublicURL (the WebOTP origin line of an SMS).
func (s *Service) publicHost() string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// logSendFailure logs a mail or SMS that could not be sent; the error names
// the server by host (never a credential), and the message's secret is
// not in it.
func (s *Service) logSendFailure(what, userID string, err error) {
	s.logger.Warn(what+" could not be sent", zap.String("user_id", userID), zap.Error(err))
}
