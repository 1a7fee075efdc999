package edgeassert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// header is the JOSE header of an assertion: the members read, and the
// members whose mere presence refuses it.
type header struct {
	Alg, Kid, Typ string
	Refused       string // the first of crit, jku, x5u, jwk, x5c, b64 present
}

// claimSet is the payload of an assertion as sent.
type claimSet struct {
	Iss, Sub, Cid, Scope, Plan, Jti string
	Aud                             []string
	Exp, Iat, Nbf                   *float64
	Roles                           []string
}

// refusedHeaders may not appear in an assertion's header (RFC 8725 §3.10,
// RFC 7515 §4.1.11): nothing names a key but kid, nothing is critical.
var refusedHeaders = []string{"crit", "jku", "x5u", "jwk", "x5c", "b64"}

// decodeHeader and decodeClaims are the only places token JSON is read.
// They go through strictObject, to be replaced by the shared strict token
// parser when it lands; the rest of the package sees only these structs.
func decodeHeader(b []byte) (header, error) {
	m, err := strictObject(b)
	if err != nil {
		return header{}, err
	}
	var h header
	for _, name := range refusedHeaders {
		if _, ok := m[name]; ok {
			h.Refused = name
			return h, nil
		}
	}
	if err := stringMember(m, "alg", &h.Alg); err != nil {
		return h, err
	}
	if err := stringMember(m, "kid", &h.Kid); err != nil {
		return h, err
	}
	if err := stringMember(m, "typ", &h.Typ); err != nil {
		return h, err
	}
	return h, nil
}

func decodeClaims(b []byte) (claimSet, error) {
	m, err := strictObject(b)
	if err != nil {
		return claimSet{}, err
	}
	var c claimSet
	for name, dst := range map[string]*string{
		"iss": &c.Iss, "sub": &c.Sub, "cid": &c.Cid, "scope": &c.Scope, "plan": &c.Plan, "jti": &c.Jti,
	} {
		if err := stringMember(m, name, dst); err != nil {
			return c, err
		}
	}
	for name, dst := range map[string]**float64{"exp": &c.Exp, "iat": &c.Iat, "nbf": &c.Nbf} {
		if raw, ok := m[name]; ok {
			var f float64
			if err := json.Unmarshal(raw, &f); err != nil {
				return c, fmt.Errorf("%s: not a number", name)
			}
			*dst = &f
		}
	}
	if raw, ok := m["aud"]; ok {
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return c, errors.New("aud: not a string")
			}
			c.Aud = []string{s}
		} else if err := json.Unmarshal(raw, &c.Aud); err != nil || c.Aud == nil {
			return c, errors.New("aud: not a string or an array of strings")
		}
	}
	if raw, ok := m["roles"]; ok {
		if err := json.Unmarshal(raw, &c.Roles); err != nil {
			return c, errors.New("roles: not an array of strings")
		}
	}
	return c, nil
}

// stringMember reads member name of m into dst when present: a JSON string
// and nothing else (null and numbers are refused).
func stringMember(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok {
		return nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%s: not a string", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s: not a string", name)
	}
	return nil
}

// strictObject returns the members of b, which must be exactly one JSON
// object of valid UTF-8 with no two member names equal in any case
// (RFC 7515 §4, RFC 7519 §4: a duplicate is refused, never "last wins").
// Member names are then matched exactly, never case-insensitively.
func strictObject(b []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	m := make(map[string]json.RawMessage, 12)
	seen := make(map[string]struct{}, 12)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := t.(string)
		if !ok {
			return nil, errors.New("member name is not a string")
		}
		folded := strings.ToLower(name)
		if _, dup := seen[folded]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		seen[folded] = struct{}{}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if dec.InputOffset() != int64(len(b)) {
		return nil, errors.New("trailing data")
	}
	return m, nil
}
