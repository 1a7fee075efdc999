package contract

// Request variables: the names under which the edge's handlers leave values
// for one another in a request's variables (caddyhttp.SetVar/GetVar). Every
// such name is here, so no two handlers pick the same one. erp.request_id,
// erp.api_version and erp.backend are also published as placeholders
// ({erp.request_id}, …) by caddymodules/internal/placeholders; the others
// hold Go values and are for the edge's own handlers only.
const (
	VarRequestID  = "erp.request_id"
	VarAPIVersion = "erp.api_version"
	VarBackend    = "erp.backend"
	// VarVersion holds the *erpapp.Version erp_version routed the request
	// to; the erp upstream source (`reverse_proxy { dynamic erp }`) reads
	// its upstreams from it.
	VarVersion = "erp.version"
	// VarTranslator holds the internal/envelope.Translator of the backend
	// chosen for the request (set by erp_version from the backend's
	// dialect); erp_envelope uses REST when it is unset.
	VarTranslator = "erp.translator"
	// VarAuthFailure holds the *Error of the credential an authentication
	// provider refused, so the envelope renders its code (TOKEN_EXPIRED, …)
	// instead of the authentication handler's generic 401.
	VarAuthFailure = "erp.auth_failure"
	// VarScope holds the verified caller's space-separated scope, set by the
	// erp_jwt and erp_api_key providers for erp_authz (a variable, not an
	// {http.auth.user.*} placeholder: the permission check is its only reader).
	VarScope = "erp.scope"
	// VarCredential holds the *Credential the request was authenticated
	// with, set by the erp_jwt and erp_api_key providers: erp_authz caches
	// the request's edge assertion per credential and backend.
	VarCredential = "erp.credential"
	// VarEnveloped is set to true by an in-process handler (the auth
	// service, erp_health, erp_usage) that writes complete envelopes itself,
	// so erp_envelope does not wrap them again. Backends can't set it: it is
	// not a header.
	VarEnveloped = "erp.enveloped"
	// VarEventSink holds the EventSink of a write (POST, PUT, PATCH,
	// DELETE) routed to a backend whose events are on, set by erp_version;
	// erp_envelope calls it once with the final status and the answer's
	// `data` when the answer is a 2xx.
	VarEventSink = "erp.event_sink"
	// VarRequestBody holds erp_envelope's follower of the request body,
	// found again when the error route renders (whatever a handler made of
	// r.Body meanwhile): an answer to a body left in the middle ends its
	// connection.
	VarRequestBody = "erp.request_body"
	// VarResponseStarted marks that the client already received headers,
	// so erp_envelope's error handling must not write a second answer.
	VarResponseStarted = "erp.response_started"
	// VarSubResource holds the *subres.Route (caddymodules/internal/subres)
	// of a request for a backend's reserved sub-resource
	// (/api/{version}/{backend}/export or /import), set by erp_version
	// instead of rewriting it for the backend; erp_bulk and erp_import
	// claim it.
	VarSubResource = "erp.sub_resource"
	// VarCompanyCheck holds a CompanyCheck of something in the request
	// bound to a company (a `?cursor=`), set by erp_version; erp_authz
	// calls it with the verified company before the request goes on and
	// refuses the request with the *Error it returns.
	VarCompanyCheck = "erp.company_check"

	// VarProxySpan holds the `erp.proxy` span (an OpenTelemetry
	// trace.Span) the erp upstream source starts for the backend call of a
	// traced request; erp_version ends it when the answer is back.
	VarProxySpan = "erp.proxy_span"
)

// CompanyCheck checks a request's company-bound parts against the caller's
// verified company; a non-nil error is a *Error.
type CompanyCheck func(company string) error

// VarMerged is set to true by erp_merge when it answered a PATCH by
// re-applying it on the current version (#18 three-way merge);
// erp_envelope then writes `meta.merged: true`.
const VarMerged = "erp.merged"
