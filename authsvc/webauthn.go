package authsvc

import "github.com/erpgate/erpgate/authsvc/store"

// Passkeys (WebAuthn): registration, passwordless login, second factor.
// Owned by the passkey work (issue #17).

// webauthnRoutes are the passkey endpoints.
var webauthnRoutes = map[string]handlerFunc{}

// webauthnState is the passkey feature's state in the Service.
type webauthnState struct{}

func (s *Service) initWebAuthn() error { return nil }

// webauthnFactor reports whether the user may complete a login with a
// passkey as a second factor.
func (s *Service) webauthnFactor(c *call, u store.User) (string, bool, error) {
	return MethodWebAuthn, false, nil
}
