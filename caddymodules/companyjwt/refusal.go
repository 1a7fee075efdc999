package companyjwt

import (
	"errors"

	"github.com/erpgate/erpgate/caddymodules/internal/edgeauth"
)

// refusalReason is the audit trail's reason for a token Verify refused.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, ErrExpired):
		return edgeauth.ReasonExpired
	case errors.Is(err, ErrRevoked):
		return edgeauth.ReasonRevoked
	case errors.Is(err, ErrUnknownKey):
		return edgeauth.ReasonUnknownKey
	case errors.Is(err, ErrSignature):
		return edgeauth.ReasonBadSignature
	case errors.Is(err, ErrClaims):
		return edgeauth.ReasonBadClaims
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrMissing):
		return edgeauth.ReasonMalformed
	}
	return edgeauth.ReasonInvalid
}
