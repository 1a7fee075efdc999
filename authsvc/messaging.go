package authsvc

import "github.com/erpgate/erpgate/authsvc/store"

// Mail and SMS: magic links, email and SMS codes as second factors.
// Owned by the messaging work (issue #17).

// messagingRoutes are the magic-link, email/SMS enrolment and challenge endpoints.
var messagingRoutes = map[string]handlerFunc{}

// messagingState is the messaging feature's state in the Service.
type messagingState struct{}

func (s *Service) initMessaging() error { return nil }

// emailFactor reports whether the user completes logins with a code by mail.
func (s *Service) emailFactor(c *call, u store.User) (string, bool, error) {
	return MethodEmail, false, nil
}

// smsFactor reports whether the user completes logins with a code by SMS.
func (s *Service) smsFactor(c *call, u store.User) (string, bool, error) {
	return MethodSMS, false, nil
}

// verifyMessageCode checks a code sent for the pending login lc by method
// (MethodEmail or MethodSMS): nil when it is right, else the refusal
// (audited, throttled).
func (s *Service) verifyMessageCode(c *call, u store.User, lc *loginClaims, method, code string) error {
	return s.refuse(c, store.EventMFAFailed, ReasonMFAOff, errBadCode())
}
