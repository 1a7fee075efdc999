package authsvc

// Enterprise SSO per company: connections (admin API), home-realm
// discovery and the OIDC flow. Owned by the SSO work (issue #17).

// ssoRoutes are the SSO endpoints (OIDC and the connections' admin API).
var ssoRoutes = map[string]handlerFunc{}

// ssoState is the SSO feature's state in the Service.
type ssoState struct{}

func (s *Service) initSSO() error { return nil }

// ssoRequired answers a login whose email domain must sign in through its
// company's identity provider: the login answer (sso_required, sso_url)
// and true; false for every other address.
func (s *Service) ssoRequired(c *call, email string) (any, bool, error) { return nil, false, nil }
