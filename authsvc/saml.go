package authsvc

// SAML 2.0 service provider for the companies' SSO connections. Owned by
// the SAML work (issue #17).

// samlRoutes are the SAML endpoints (ACS, SP metadata).
var samlRoutes = map[string]handlerFunc{}
