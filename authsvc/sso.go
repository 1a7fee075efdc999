package authsvc

import (
	"net/http"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

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

// ssoIdentity is who an identity provider says signed in.
type ssoIdentity struct {
	Subject string // the IdP's stable id of the user (OIDC sub, SAML NameID)
	Email   string // as the IdP asserts it (normalised by ssoSignIn)
	Name    string
}

// ssoSignIn ends every SSO flow (OIDC callback, SAML ACS) whose answer
// from the IdP was verified: the email's domain must be one of the
// connection's, the user is found (or provisioned when the connection's
// JIT is on) and must be a member of the connection's company; then
// finishLogin. returnTo, when not empty, is the hosted page the flow
// started from: the answer is a redirect to it with the login answer in
// the fragment instead of the JSON envelope.
func (s *Service) ssoSignIn(c *call, conn store.SSOConnection, id ssoIdentity, returnTo string) (int, any, error) {
	return 0, nil, contract.NewError(http.StatusNotImplemented, contract.CodeBadRequest, "sso is not available")
}
