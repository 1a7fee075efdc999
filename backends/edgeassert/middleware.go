package edgeassert

import (
	"context"
	"net/http"
)

// IdentityHeaders are the headers the edge once used to hand the identity
// to backends. Anyone who reaches a service directly can send them, so the
// middleware removes them, in every spelling, before a handler runs.
var IdentityHeaders = []string{"X-ERP-Company-ID", "X-ERP-User-ID", "X-ERP-Roles", "X-ERP-Scope"}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the verified identity the middleware put in ctx. The
// Identity is shared between requests with the same assertion: read only.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok && id != nil
}

// Middleware serves next only requests with a valid edge assertion for
// this backend, with the caller's Identity in the context (FromContext).
// Every other request gets 401 (see the package doc).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.Authenticate(r)
		if err != nil {
			if v.cfg.OnRefuse != nil {
				v.cfg.OnRefuse(r, err)
			}
			WriteUnauthorized(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Authenticate is the middleware's check without the answer: it removes the
// identity headers from r and returns the identity of r's one assertion.
func (v *Verifier) Authenticate(r *http.Request) (*Identity, error) {
	token, n := assertionOf(r.Header)
	switch {
	case n == 0:
		return nil, ErrMissing
	case n > 1:
		return nil, ErrDuplicate
	}
	audience := v.cfg.Audience
	if v.cfg.AudienceFor != nil {
		audience = v.cfg.AudienceFor(r)
	}
	if audience == "" {
		return nil, ErrAudience
	}
	return v.Verify(r.Context(), token, audience)
}

// assertionOf removes the client-settable identity headers from h and
// returns the assertion and how many were sent, counting every spelling
// (X_ERP_Assertion is one to a framework that folds '_' into '-').
func assertionOf(h http.Header) (string, int) {
	var token string
	n := 0
	for name, vals := range h {
		if len(name) < 2 || (name[0] != 'X' && name[0] != 'x') {
			continue
		}
		if sameName(name, Header) {
			n += len(vals)
			if len(vals) > 0 {
				token = vals[0]
			}
			continue
		}
		for _, ih := range IdentityHeaders {
			if sameName(name, ih) {
				delete(h, name)
				break
			}
		}
	}
	return token, n
}

// sameName compares header names in any case, '_' counting as '-'.
func sameName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// WriteUnauthorized answers 401 as the middleware does: a problem+json body
// and a challenge that name what is missing and nothing more.
func WriteUnauthorized(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Www-Authenticate", `ERP-Assertion realm="erpgate"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(unauthorizedBody)
}

var unauthorizedBody = []byte(`{"type":"about:blank","title":"Unauthorized","status":401,` +
	`"detail":"this service answers only requests that come through the edge with a valid edge assertion"}` + "\n")
