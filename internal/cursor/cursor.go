// Package cursor makes and reads the edge's opaque pagination cursors
// (`?cursor=` / `pagination.next_cursor`). A cursor carries the position in
// the backend's own terms (a keyset value, an OData $skiptoken, or an
// offset), is bound to the company that was given it and to the query
// (backend, version, collection, filters, sort) it continues, and is signed with
// HMAC-SHA256 under a key every instance configured alike shares, so any
// instance verifies another's. It owns the cursor format; of ours it
// imports nothing.
//
// Format: base64url(payload) "." base64url(mac); payload is a version byte
// (1) and Token's four fields in order, each a uvarint length and its bytes.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"sync"
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
type Codec struct {
	key  []byte
	macs sync.Pool // keyed HMAC states: hmac.New costs more than the MAC of a cursor
}

// New returns a Codec for key, which must hold at least 32 bytes (derive it
// from the master key or take cursor_key).
func New(key []byte) (*Codec, error) {
	if len(key) < 32 {
		return nil, errors.New("cursor: the key must hold at least 32 bytes")
	}
	c := &Codec{key: append([]byte(nil), key...)}
	c.macs.New = func() any { return hmac.New(sha256.New, c.key) }
	return c, nil
}

// mac appends the MAC of payload to dst.
func (c *Codec) mac(dst, payload []byte) []byte {
	m := c.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(payload)
	dst = m.Sum(dst)
	c.macs.Put(m)
	return dst
}

// DeriveKey derives the cursor key from a master key, so that no other use
// of the master key can produce or verify a cursor.
func DeriveKey(master []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("erpgate cursor v1"))
	return m.Sum(nil)
}

// QueryHash fingerprints a query from its canonical parts (backend,
// version, collection, each filter, sort); the caller passes them in a
// fixed order. Parts are length-prefixed so no two lists collide.
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
	var pbuf [256]byte
	payload := appendToken(pbuf[:0], &t)
	var sum [sha256.Size]byte
	out := make([]byte, 0, base64.RawURLEncoding.EncodedLen(len(payload))+1+base64.RawURLEncoding.EncodedLen(sha256.Size))
	out = base64.RawURLEncoding.AppendEncode(out, payload)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, c.mac(sum[:0], payload))
	return string(out)
}

// Open verifies s and returns its token when it was issued to company for
// the query fingerprinted query.
func (c *Codec) Open(s, company, query string) (Token, error) {
	t, err := c.Verify(s, query)
	if err != nil {
		return t, err
	}
	if t.Company != company {
		return Token{}, ErrOtherCompany
	}
	return t, nil
}

// Verify checks s's signature and that it continues the query fingerprinted
// query, and returns its token; the caller compares Token.Company with the
// caller's company once it is known (the edge learns the query before the
// identity).
func (c *Codec) Verify(s, query string) (Token, error) {
	var t Token
	if len(s) > MaxLen {
		return t, ErrMalformed
	}
	p64, m64, ok := strings.Cut(s, ".")
	if !ok || base64.RawURLEncoding.DecodedLen(len(m64)) != sha256.Size {
		return t, ErrMalformed
	}
	var pbuf [512]byte
	var mac [sha256.Size]byte
	payload := pbuf[:0]
	if n := base64.RawURLEncoding.DecodedLen(len(p64)); n > len(pbuf) {
		payload = make([]byte, 0, n)
	}
	payload, err1 := base64.RawURLEncoding.AppendDecode(payload, []byte(p64))
	_, err2 := base64.RawURLEncoding.Decode(mac[:], []byte(m64))
	if err1 != nil || err2 != nil {
		return t, ErrMalformed
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(mac[:], c.mac(sum[:0], payload)) {
		return t, ErrSignature
	}
	if !readToken(payload, &t) || t.Kind == "" {
		return Token{}, ErrMalformed
	}
	if t.Query != query {
		return Token{}, ErrOtherQuery
	}
	return t, nil
}

const formatVersion = 1

func appendToken(b []byte, t *Token) []byte {
	b = append(b, formatVersion)
	for _, f := range [...]string{t.Company, t.Query, t.Kind, t.Pos} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// readToken reads what appendToken wrote, and nothing more.
func readToken(b []byte, t *Token) bool {
	if len(b) == 0 || b[0] != formatVersion {
		return false
	}
	b = b[1:]
	for _, f := range [...]*string{&t.Company, &t.Query, &t.Kind, &t.Pos} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return false
		}
		*f = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return len(b) == 0
}
