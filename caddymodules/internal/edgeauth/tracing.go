package edgeauth

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/tracing"
)

// EndSpan ends a provider's `erp.auth` span (internal/tracing) with its
// outcome: `ok` and the company, or the refusal's error code in lower case
// (`unauthenticated`, `token_expired`, `service_unavailable`, …), or
// `not_mine` when the credential was another provider's. Nothing secret:
// never the credential.
func EndSpan(span trace.Span, r *http.Request, provider string, user caddyauth.User, authenticated bool) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.KeyProvider.String(provider))
	switch {
	case authenticated:
		span.SetAttributes(tracing.KeyOutcome.String("ok"), tracing.KeyCompany.String(user.Metadata["company_id"]))
	default:
		if e, ok := caddyhttp.GetVar(r.Context(), contract.VarAuthFailure).(*contract.Error); ok && e != nil {
			span.SetAttributes(tracing.KeyOutcome.String(strings.ToLower(e.Code)))
			span.SetStatus(codes.Error, e.Code)
		} else {
			span.SetAttributes(tracing.KeyOutcome.String("refused"))
		}
	}
	span.End()
}
