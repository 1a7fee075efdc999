package authsvc

import (
	"context"
	"errors"

	"github.com/erpgate/erpgate/authsvc/store"
)

// SAML 2.0 service provider for the companies' SSO connections. Owned by
// the SAML work (issue #17).

// samlRoutes are the SAML endpoints (ACS, SP metadata).
var samlRoutes = map[string]handlerFunc{}

// samlConnectionInput is the `saml` member of a new SSO connection (POST
// /api/v1/admin/companies/{id}/sso): the IdP's metadata, by URL or inline.
type samlConnectionInput struct {
	MetadataURL string `json:"metadata_url"`
	MetadataXML string `json:"metadata_xml"`
}

// prepareSAMLConnection fills a new SAML connection from its input: the
// IdP metadata (fetched when given by URL), the SP's key (sealed) and
// certificate. Its errors are refusals for the caller (invalid(…)).
func (s *Service) prepareSAMLConnection(ctx context.Context, conn *store.SSOConnection, in samlConnectionInput) error {
	return errors.New("saml is not available")
}

// startSAML answers GET /api/v1/auth/sso/{company}/start for a SAML
// connection: the AuthnRequest to the IdP (HTTP-Redirect binding).
func (s *Service) startSAML(c *call, conn store.SSOConnection, returnTo string) (int, any, error) {
	return 0, nil, errors.New("saml is not available")
}
