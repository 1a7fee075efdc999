// Package credential is the one rule, shared by the edge's authentication
// providers (erp_jwt, erp_api_key) and the auth service, for finding the
// credential a request carries. It owns that rule and no state; of ours it
// imports only contract, and it must not import Caddy or anything under
// caddymodules/ (the auth service uses it too). A request carries at most
// one:
//
//   - `Authorization: Bearer <token>`, `Authorization: ApiKey <key>` (or
//     another scheme, which nothing here accepts),
//   - `X-API-Key: <key>`,
//   - on a WebSocket upgrade, `Sec-WebSocket-Protocol: bearer, <token>`.
//
// Two of them — two Authorization lines, two X-API-Key lines, a bearer token
// and an API key, a subprotocol bearer and any other — are refused with 400
// BAD_REQUEST (RFC 6750 §3.1 `invalid_request`) instead of letting one
// reader pick the first and another the last. So is a credential header
// under a non-standard spelling (`X_API_Key`, which Go keeps as a distinct
// header but CGI-style frameworks read as X-API-Key): header names are
// compared case-insensitively with `_` and `-` alike, so no spelling hides a
// second credential. (Caddy's server already drops header names with `_`
// or `.` unless its `expected_underscore_headers` allows them; the rule
// still holds where they arrive: such a server, or the auth service run
// alone with `gateway authsvc`.)
//
// Find looks up a handful of header keys and allocates nothing.
package credential

import (
	"errors"
	"net/http"
	"strings"

	"github.com/erpgate/erpgate/contract"
)

// Kind of credential.
type Kind uint8

const (
	None   Kind = iota // no credential
	Bearer             // Authorization: Bearer, or the WebSocket subprotocol form
	APIKey             // Authorization: ApiKey, or X-API-Key
	Other              // Authorization with any other scheme (Basic, Digest, …)
)

// Source is where a credential was found.
type Source uint8

const (
	FromAuthorization Source = iota + 1
	FromAPIKeyHeader
	FromWebSocket
	FromCookie // the __Host-erp_at cookie of cookie mode (browsers)
)

// Credential is the one credential of a request.
type Credential struct {
	Kind   Kind
	Value  string // the token or key, without surrounding spaces; empty when malformed
	Source Source
}

// Errors of Find.
var (
	ErrAmbiguous   = errors.New("credential: more than one credential in the request")
	ErrNonStandard = errors.New("credential: a credential header under a non-standard name")
)

// Header names as net/http stores them (every server canonicalises names with
// textproto.CanonicalMIMEHeaderKey, which leaves `_` alone): the standard
// name first, then each spelling with `_` for some `-`.
var (
	authorizationNames = Spellings("Authorization")
	apiKeyNames        = Spellings("X-Api-Key")
	wsProtocolNames    = Spellings("Sec-Websocket-Protocol")
)

// Spellings returns the canonical header keys of name with every mix of `-`
// and `_` between its words, name's own canonical form first.
func Spellings(name string) []string {
	out := []string{http.CanonicalHeaderKey(name)}
	var walk func(prefix, rest string)
	walk = func(prefix, rest string) {
		i := strings.IndexAny(rest, "-_")
		if i < 0 {
			k := http.CanonicalHeaderKey(prefix + rest)
			for _, o := range out {
				if o == k {
					return
				}
			}
			out = append(out, k)
			return
		}
		walk(prefix+rest[:i]+"-", rest[i+1:])
		walk(prefix+rest[:i]+"_", rest[i+1:])
	}
	walk("", name)
	return out
}

// Find returns the request header's only credential, None when there is
// none, or ErrAmbiguous / ErrNonStandard. upgrade says whether the request
// is a WebSocket upgrade (only then is the subprotocol form a credential).
// h must hold canonical keys, as every net/http server's requests do.
func Find(h http.Header, upgrade bool) (Credential, error) {
	var (
		c      Credential
		n      int
		nonStd bool
	)
	for i, k := range authorizationNames {
		for _, v := range h[k] {
			n++
			nonStd = nonStd || i > 0
			c = authorization(v)
		}
	}
	for i, k := range apiKeyNames {
		for _, v := range h[k] {
			n++
			nonStd = nonStd || i > 0
			c = Credential{Kind: APIKey, Value: strings.TrimSpace(v), Source: FromAPIKeyHeader}
		}
	}
	if upgrade {
		for i, k := range wsProtocolNames {
			for _, v := range h[k] {
				for rest := v; rest != ""; {
					var item string
					item, rest, _ = strings.Cut(rest, ",")
					if !strings.EqualFold(strings.TrimSpace(item), "bearer") {
						continue
					}
					n++
					nonStd = nonStd || i > 0
					tok, _, _ := strings.Cut(rest, ",")
					c = Credential{Kind: Bearer, Value: strings.TrimSpace(tok), Source: FromWebSocket}
				}
			}
		}
	}
	switch {
	case n > 1:
		return Credential{}, ErrAmbiguous
	case nonStd:
		return Credential{}, ErrNonStandard
	}
	return c, nil
}

// FromRequest is Find on r's header, with the subprotocol form counted on
// WebSocket upgrades (any request with an Upgrade header). When the header
// carries no credential, the access token cookie of cookie mode
// (AccessCookie) is the request's bearer token, Source FromCookie. A
// request with both a header credential and the cookie is read by its
// header: a browser sends the cookie with every request to the site, so a
// script that adds an Authorization header of another session must not be
// refused for the cookie it cannot remove. Whoever accepts a FromCookie
// credential on an unsafe method must call CheckCSRF first.
func FromRequest(r *http.Request) (Credential, error) {
	c, err := Find(r.Header, r.Header.Get("Upgrade") != "")
	if err != nil || c.Kind != None || len(r.Header["Cookie"]) == 0 {
		return c, err
	}
	if ck, err := r.Cookie(AccessCookie); err == nil && ck.Value != "" {
		return Credential{Kind: Bearer, Value: ck.Value, Source: FromCookie}, nil
	}
	return c, nil
}

// authorization reads one Authorization value.
func authorization(v string) Credential {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	c := Credential{Kind: Other, Value: strings.TrimSpace(rest), Source: FromAuthorization}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		c.Kind = Bearer
	case strings.EqualFold(scheme, "ApiKey"):
		c.Kind = APIKey
	}
	return c
}

// RemoveWebSocketBearer drops `bearer, <token>` from the request's
// Sec-WebSocket-Protocol (the rest of the list goes on to the backend).
func RemoveWebSocketBearer(h http.Header) {
	vs := h.Values("Sec-Websocket-Protocol")
	if len(vs) == 0 {
		return
	}
	var keep []string
	for _, v := range vs {
		items := strings.Split(v, ",")
		for i := 0; i < len(items); i++ {
			if strings.EqualFold(strings.TrimSpace(items[i]), "bearer") {
				i++ // and the token after it
				continue
			}
			if s := strings.TrimSpace(items[i]); s != "" {
				keep = append(keep, s)
			}
		}
	}
	if len(keep) == 0 {
		h.Del("Sec-Websocket-Protocol")
		return
	}
	h.Set("Sec-Websocket-Protocol", strings.Join(keep, ", "))
}

// Refusal is the answer to a Find error: 400 BAD_REQUEST with an RFC 6750
// `invalid_request` challenge, the same at the edge and in the auth service.
func Refusal(err error) *contract.Error {
	msg := "send one credential: a bearer token or an API key, not both and not twice"
	if errors.Is(err, ErrNonStandard) {
		msg = "send the credential in Authorization or X-API-Key (a header name with an underscore is not read)"
	}
	return &contract.Error{
		Status: http.StatusBadRequest, Code: contract.CodeBadRequest, Message: msg,
		Header: http.Header{"Www-Authenticate": {`Bearer realm="erpgate", error="invalid_request", error_description="` + msg + `"`}},
	}
}
