package jwtverify

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/erpgate/erpgate/internal/tokenjson"
)

// Why a token was refused. Callers map these to their own answers (an
// envelope code, an audit reason); a message never holds the token.
var (
	ErrMalformed  = errors.New("malformed token")
	ErrType       = errors.New("token type (typ) refused")
	ErrAlgorithm  = errors.New("token algorithm does not match its key")
	ErrSignature  = errors.New("token signature invalid")
	ErrClaims     = errors.New("token claims invalid")
	ErrExpired    = errors.New("token expired")
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrKeysUnavailable: the token names a key the verifier does not
	// hold and the key set could not be fetched; the token cannot be
	// checked now (which is not the same as invalid).
	ErrKeysUnavailable = errors.New("key set unavailable")
)

// Key is one verification key with the algorithm it is published for. The
// key's algorithm — never the token's — decides how a signature is checked
// (RFC 8725 §3.1).
type Key struct {
	Kid    string
	Alg    jwa.SignatureAlgorithm
	Public any // *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey
}

// EdDSAKey is the Key of an Ed25519 public key.
func EdDSAKey(kid string, pub ed25519.PublicKey) Key {
	return Key{Kid: kid, Alg: jwa.EdDSA(), Public: pub}
}

// DefaultMaxBytes bounds the token Parse reads when the caller gives none.
const DefaultMaxBytes = 8192

// MaxKidBytes bounds a kid, in a token and in a key set.
const MaxKidBytes = 256

// Header is the protected header of a token: the members a verifier decides
// on. Any member that names a key other than kid (jku, x5u, jwk, x5c), crit
// and b64 refuse the token in Parse: nothing is fetched or followed, nothing
// is critical, the payload is always base64url (RFC 8725 §3.10, RFC 7515
// §4.1.11, RFC 7797).
type Header struct {
	Alg, Kid, Typ string
}

// wireHeader is the header as tokenjson decodes it: members not named here
// are allowed, a case variant or duplicate of one named is not.
type wireHeader struct {
	Alg  string        `json:"alg"`
	Kid  string        `json:"kid"`
	Typ  string        `json:"typ"`
	Crit tokenjson.Raw `json:"crit"`
	Jku  tokenjson.Raw `json:"jku"`
	X5u  tokenjson.Raw `json:"x5u"`
	Jwk  tokenjson.Raw `json:"jwk"`
	X5c  tokenjson.Raw `json:"x5c"`
	B64  tokenjson.Raw `json:"b64"`
}

var headerJSON = tokenjson.MustCompile[wireHeader]()

// Token is a compact JWS that Parse read strictly; its signature is not
// checked until Verify.
type Token struct {
	Header  Header
	compact string
}

// Parse reads a compact JWS (RFC 7515 §7.1) strictly: at most maxBytes (0:
// DefaultMaxBytes); three non-empty parts, each unpadded base64url with zero
// padding bits (one token, one encoding); a protected header that tokenjson
// reads (one object, exact member names, no duplicate in any case, valid
// UTF-8, alg, kid and typ strings); no crit, jku, x5u, jwk, x5c or b64; a
// kid of at most MaxKidBytes. Errors wrap ErrMalformed.
func Parse(compact string, maxBytes int) (Token, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(compact) > maxBytes {
		return Token{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxBytes)
	}
	h64, rest, ok := strings.Cut(compact, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || h64 == "" || p64 == "" || s64 == "" || strings.IndexByte(s64, '.') >= 0 {
		return Token{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	if !strictB64(p64) {
		return Token{}, fmt.Errorf("%w: payload encoding", ErrMalformed)
	}
	if !strictB64(s64) {
		return Token{}, fmt.Errorf("%w: signature encoding", ErrMalformed)
	}
	var buf [512]byte
	hb, err := strictB64Enc.AppendDecode(buf[:0], []byte(h64))
	if err != nil {
		return Token{}, fmt.Errorf("%w: header encoding", ErrMalformed)
	}
	var h wireHeader
	if err := headerJSON.Decode(hb, &h); err != nil {
		return Token{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	for _, m := range [...]struct {
		name string
		v    tokenjson.Raw
	}{{"crit", h.Crit}, {"jku", h.Jku}, {"x5u", h.X5u}, {"jwk", h.Jwk}, {"x5c", h.X5c}, {"b64", h.B64}} {
		if m.v != nil {
			return Token{}, fmt.Errorf("%w: header %s is refused", ErrMalformed, m.name)
		}
	}
	if h.Kid == "" || len(h.Kid) > MaxKidBytes {
		return Token{}, fmt.Errorf("%w: kid missing or too long", ErrMalformed)
	}
	return Token{Header: Header{Alg: h.Alg, Kid: h.Kid, Typ: h.Typ}, compact: compact}, nil
}

// Verify checks the token's signature with key through jwx (jws.Verify,
// with the key's own algorithm) and returns the payload. The header's alg
// must be the key's (ErrAlgorithm); a bad signature is ErrSignature.
func (t *Token) Verify(key Key) ([]byte, error) {
	if t.Header.Alg == "" || t.Header.Alg != key.Alg.String() {
		return nil, ErrAlgorithm
	}
	payload, err := jws.Verify([]byte(t.compact), jws.WithKey(key.Alg, key.Public))
	if err != nil {
		return nil, ErrSignature
	}
	return payload, nil
}

var strictB64Enc = base64.RawURLEncoding.Strict()

// b64url is the unpadded base64url alphabet (RFC 4648 §5).
const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

var b64index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := range len(b64url) {
		t[b64url[i]] = int8(i)
	}
	return t
}()

// strictB64 reports whether s is unpadded base64url whose last character
// carries no non-zero padding bits: the one encoding of its bytes, as
// base64.RawURLEncoding.Strict() decodes, without decoding.
func strictB64(s string) bool {
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		if v := b64index[s[len(s)-1]]; v < 0 || v&0x0f != 0 {
			return false
		}
	case 3:
		if v := b64index[s[len(s)-1]]; v < 0 || v&0x03 != 0 {
			return false
		}
	}
	for i := range len(s) {
		if b64index[s[i]] < 0 {
			return false
		}
	}
	return true
}
