// Package cursor makes and reads the edge's opaque pagination cursors
// (`?cursor=` / `pagination.next_cursor`). A cursor carries the position in
// the backend's own terms (a keyset value, an OData $skiptoken, or an
// offset), is bound to the company that was given it and to the query
// (backend, version, filters, sort, limit) it continues, and is signed with
// HMAC-SHA256 under a key every instance configured alike shares, so any
// instance verifies another's. It owns the cursor format; of ours it
// imports nothing.
//
// Format: base64url(payload) "." base64url(mac), payload the JSON of Token.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// MaxLen bounds a cursor a client may send.
const MaxLen = 2048

// Token is what a cursor holds.
type Token struct {
	// Company is the company the cursor was issued to.
	Company string `json:"c"`
	// Query is the fingerprint of the query it continues (QueryHash).
	Query string `json:"q"`
	// Kind is how the position is read: "keyset", "skiptoken" or "offset".
	Kind string `json:"k"`
	// Pos is the position: the last key seen, the backend's skip token, or
	// the offset in decimal.
	Pos string `json:"p"`
}

// Errors of Open; each is a 400 for the client.
var (
	ErrMalformed    = errors.New("the cursor is malformed")
	ErrSignature    = errors.New("the cursor's signature does not verify")
	ErrOtherCompany = errors.New("the cursor was issued to another company")
	ErrOtherQuery   = errors.New("the cursor belongs to a different query")
)

// Codec signs and verifies cursors under one key.
type Codec struct{ key []byte }

// New returns a Codec for key, which must hold at least 32 bytes (derive it
// from the master key or take cursor_key).
func New(key []byte) (*Codec, error) {
	if len(key) < 32 {
		return nil, errors.New("cursor: the key must hold at least 32 bytes")
	}
	return &Codec{key: append([]byte(nil), key...)}, nil
}

// DeriveKey derives the cursor key from a master key, so that no other use
// of the master key can produce or verify a cursor.
func DeriveKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("erpgate cursor v1"))
	return m.Sum(nil)
}

// QueryHash fingerprints a query from its canonical parts (backend,
// version, each filter, sort, limit); the caller passes them in a fixed
// order. Parts are length-prefixed so no two lists collide.
func QueryHash(parts ...string) string {
	h := sha256.New()
	var n [4]byte
	for _, p := range parts {
		l := len(p)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// Seal makes the opaque cursor of t.
func (c *Codec) Seal(t Token) string {
	payload, _ := json.Marshal(t) // plain strings: cannot fail
	m := hmac.New(sha256.New, c.key)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Open verifies s and returns its token when it was issued to company for
// the query fingerprinted query.
func (c *Codec) Open(s, company, query string) (Token, error) {
	var t Token
	if len(s) > MaxLen {
		return t, ErrMalformed
	}
	p64, m64, ok := strings.Cut(s, ".")
	if !ok {
		return t, ErrMalformed
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(m64)
	if err1 != nil || err2 != nil {
		return t, ErrMalformed
	}
	m := hmac.New(sha256.New, c.key)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return t, ErrSignature
	}
	if err := json.Unmarshal(payload, &t); err != nil {
		return Token{}, ErrMalformed
	}
	switch {
	case t.Company != company:
		return Token{}, ErrOtherCompany
	case t.Query != query:
		return Token{}, ErrOtherQuery
	}
	return t, nil
}
