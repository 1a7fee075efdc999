package authsvc

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/jwtverify"
)

// AlgEdDSA is the JWS algorithm of every signing key.
const AlgEdDSA = "EdDSA"

// ParseMasterKey decodes ERP_MASTER_KEY: 32 bytes in standard base64.
func ParseMasterKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		// Never echo the value: it is the secret that protects every signing key.
		return nil, errors.New("master key must be 32 bytes in standard base64")
	}
	return b, nil
}

// Sealer seals signing keys at rest with AES-256-GCM under the master key.
// The key id is the additional data, so a sealed key can't be swapped onto
// another key's row.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != 32 {
		return nil, errors.New("master key must be 32 bytes")
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to kid: nonce || ciphertext.
func (s *Sealer) Seal(kid string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, []byte(kid))
}

// Open decrypts what Seal produced for kid.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed key too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, errors.New("sealed key does not open under this master key")
	}
	return pt, nil
}

// NewSigningKey makes a fresh Ed25519 access-token key, sealed, published at
// now and signing from activatesAt. Its kid is the RFC 7638 thumbprint of the
// public key.
func NewSigningKey(sealer *Sealer, now, activatesAt time.Time) (store.SigningKey, error) {
	return NewKey(sealer, store.KeyAccess, now, activatesAt)
}

// NewKey makes a fresh Ed25519 key of a purpose, sealed, published at now
// and signing from activatesAt. Its kid is the RFC 7638 thumbprint of the
// public key, after contract.AssertionKIDPrefix for an assertion key; the
// thumbprint of an access-token key never starts with that prefix (such a
// key is drawn again), so kids tell the purposes apart.
func NewKey(sealer *Sealer, purpose store.KeyPurpose, now, activatesAt time.Time) (store.SigningKey, error) {
	if purpose != store.KeyAccess && purpose != store.KeyAssertion {
		return store.SigningKey{}, fmt.Errorf("generate signing key: unknown purpose %q", purpose)
	}
	for {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
		}
		kid, err := thumbprint(pub)
		if err != nil {
			return store.SigningKey{}, err
		}
		if purpose == store.KeyAssertion {
			kid = contract.AssertionKIDPrefix + kid
		} else if isAssertionKID(kid) {
			continue // about one key in 2^30
		}
		return store.SigningKey{
			KID: kid, Alg: AlgEdDSA, PublicKey: pub, SealedPrivate: sealer.Seal(kid, priv.Seed()),
			CreatedAt: now, ActivatesAt: activatesAt,
		}, nil
	}
}

// isAssertionKID reports whether kid names an assertion key.
func isAssertionKID(kid string) bool { return strings.HasPrefix(kid, contract.AssertionKIDPrefix) }

func thumbprint(pub ed25519.PublicKey) (string, error) {
	k, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("import public key: %w", err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ringKey is one key of the ring; priv is nil for a key this process can't
// unseal (sealed under another master key): it is still published.
type ringKey struct {
	kid         string
	pub         ed25519.PublicKey
	priv        ed25519.PrivateKey
	createdAt   time.Time
	activatesAt time.Time
	hdr         protectedHeaders // filled by newKeyRing
	verify      jwtverify.Key    // filled by newKeyRing
}

// keyRing is an immutable snapshot of the published keys of one purpose,
// oldest activation first.
type keyRing struct {
	keys []ringKey
	set  jwk.Set // public keys, with kid, alg and use
}

func newKeyRing(keys []ringKey) (*keyRing, error) {
	keys = slices.Clone(keys)
	set := jwk.NewSet()
	for i, k := range keys {
		hdr, err := newProtectedHeaders(k.kid)
		if err != nil {
			return nil, err
		}
		keys[i].hdr, keys[i].verify = hdr, jwtverify.EdDSAKey(k.kid, k.pub)
		jk, err := publicJWK(k)
		if err != nil {
			return nil, err
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("add key %s: %w", k.kid, err)
		}
	}
	return &keyRing{keys: keys, set: set}, nil
}

func publicJWK(k ringKey) (jwk.Key, error) {
	jk, err := jwk.Import(k.pub)
	if err != nil {
		return nil, fmt.Errorf("import public key %s: %w", k.kid, err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: k.kid, jwk.AlgorithmKey: jwa.EdDSA(), jwk.KeyUsageKey: "sig"} {
		if err := jk.Set(name, v); err != nil {
			return nil, fmt.Errorf("set %s on key %s: %w", name, k.kid, err)
		}
	}
	return jk, nil
}

// publishedKeys is the JWKS: the keys of every purpose (access-token keys,
// then assertion keys), as a set and as the JSON of /.well-known/jwks.json.
type publishedKeys struct {
	set  jwk.Set
	json []byte
}

func publishKeys(rings ...*keyRing) (*publishedKeys, error) {
	set := jwk.NewSet()
	for _, r := range rings {
		if r == nil {
			continue
		}
		for _, k := range r.keys {
			jk, err := publicJWK(k)
			if err != nil {
				return nil, err
			}
			if err := set.AddKey(jk); err != nil {
				return nil, fmt.Errorf("add key %s: %w", k.kid, err)
			}
		}
	}
	js, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	return &publishedKeys{set: set, json: js}, nil
}

// signer is the newest key active at now that this process can sign with.
func (r *keyRing) signer(now time.Time) (ringKey, bool) {
	for i := len(r.keys) - 1; i >= 0; i-- {
		k := r.keys[i]
		if !k.activatesAt.After(now) && k.priv != nil {
			return k, true
		}
	}
	return ringKey{}, false
}

func (r *keyRing) lookup(kid string) (ringKey, bool) {
	for _, k := range r.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return ringKey{}, false
}

// keyManager keeps the ring of one purpose in sync with the store and
// rotates it on schedule.
type keyManager struct {
	store        store.Store
	purpose      store.KeyPurpose
	sealer       *Sealer
	logger       *zap.Logger
	rotation     time.Duration // a key signs for this long
	publishDelay time.Duration // a new key is published this long before it signs
	lifetime     time.Duration // the longest anything the keys sign lives
	reload       time.Duration // how often instances re-read the keys
	ring         atomic.Pointer[keyRing]
}

// sync reads the keys, creates the first one or the next one when due,
// deletes those whose every token has expired, and installs the new ring.
func (m *keyManager) sync(ctx context.Context, now time.Time) error {
	stored, err := m.store.ListSigningKeys(ctx, m.purpose)
	if err != nil {
		return err
	}
	changed := false
	// Retire: a key is no longer needed once its successor has been active
	// for longer than what it signs lives (plus a reload interval, for
	// instances that signed with it before they noticed the successor).
	keep := stored[:0:0]
	for i, k := range stored {
		if i+1 < len(stored) {
			succ := stored[i+1]
			if !succ.ActivatesAt.After(now) && now.Sub(succ.ActivatesAt) > m.lifetime+m.reload+time.Minute {
				if err := m.store.DeleteSigningKey(ctx, m.purpose, k.KID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				m.logger.Info("signing key retired", zap.String("purpose", string(m.purpose)), zap.String("kid", k.KID))
				changed = true
				continue
			}
		}
		keep = append(keep, k)
	}
	ring := m.unseal(keep)
	signer, ok := ring.signerAt(now)
	pending := false
	for _, k := range ring {
		if k.activatesAt.After(now) && k.priv != nil {
			pending = true
		}
	}
	switch {
	case !ok && !pending:
		// No key this process can sign with: the very first start, or keys
		// sealed under another master key. Active at once: nothing signed
		// with it can exist before it is published.
		if err := m.addFirst(ctx, now, keep); err != nil {
			return err
		}
		changed = true
	case ok && !pending && now.Add(m.publishDelay).Sub(signer.activatesAt) >= m.rotation:
		if err := m.add(ctx, now, now.Add(m.publishDelay)); err != nil {
			return err
		}
		countKeyRotation(m.purpose)
		changed = true
	}
	if changed {
		stored, err = m.store.ListSigningKeys(ctx, m.purpose)
		if err != nil {
			return err
		}
		ring = m.unseal(stored)
	}
	kr, err := newKeyRing(ring)
	if err != nil {
		return err
	}
	m.ring.Store(kr)
	return nil
}

// Rotate publishes a new key that signs from now+activateIn.
func (m *keyManager) Rotate(ctx context.Context, now time.Time, activateIn time.Duration) (string, error) {
	k, err := NewKey(m.sealer, m.purpose, now, now.Add(activateIn))
	if err != nil {
		return "", err
	}
	if err := m.store.AddSigningKey(ctx, m.purpose, k); err != nil {
		return "", err
	}
	m.logger.Info("signing key published", zap.String("purpose", string(m.purpose)), zap.String("kid", k.KID), zap.Time("activates_at", k.ActivatesAt))
	countKeyRotation(m.purpose)
	return k.KID, m.sync(ctx, now)
}

// conditionalKeyStore is a store where instances starting together can
// agree on the first key (store.Postgres); in a process's own store there
// is nobody to agree with.
type conditionalKeyStore interface {
	AddSigningKeyIfUnchanged(ctx context.Context, purpose store.KeyPurpose, k store.SigningKey, seen []string) (bool, error)
}

// addFirst adds a key active at once, unless another instance changed the
// keys since seen were read: then, when one of the keys now stored can
// sign for this process (the same master key), it is used instead, so
// instances starting together sign with one key that all of them publish.
func (m *keyManager) addFirst(ctx context.Context, now time.Time, seen []store.SigningKey) error {
	cs, ok := m.store.(conditionalKeyStore)
	if !ok {
		return m.add(ctx, now, now)
	}
	k, err := NewKey(m.sealer, m.purpose, now, now)
	if err != nil {
		return err
	}
	kids := make([]string, len(seen))
	for i, s := range seen {
		kids[i] = s.KID
	}
	added, err := cs.AddSigningKeyIfUnchanged(ctx, m.purpose, k, kids)
	if err != nil {
		return err
	}
	if added {
		m.logger.Info("signing key published", zap.String("purpose", string(m.purpose)), zap.String("kid", k.KID), zap.Time("activates_at", now))
		return nil
	}
	stored, err := m.store.ListSigningKeys(ctx, m.purpose)
	if err != nil {
		return err
	}
	if _, ok := m.unseal(stored).signerAt(now); ok {
		return nil // another instance's, sealed under the same master key
	}
	return m.add(ctx, now, now)
}

func (m *keyManager) add(ctx context.Context, now, activatesAt time.Time) error {
	k, err := NewKey(m.sealer, m.purpose, now, activatesAt)
	if err != nil {
		return err
	}
	if err := m.store.AddSigningKey(ctx, m.purpose, k); err != nil {
		return err
	}
	m.logger.Info("signing key published", zap.String("purpose", string(m.purpose)), zap.String("kid", k.KID), zap.Time("activates_at", activatesAt))
	return nil
}

type ringKeys []ringKey

func (rk ringKeys) signerAt(now time.Time) (ringKey, bool) {
	return (&keyRing{keys: rk}).signer(now)
}

func (m *keyManager) unseal(stored []store.SigningKey) ringKeys {
	out := make(ringKeys, 0, len(stored))
	for _, k := range stored {
		if k.Alg != AlgEdDSA || len(k.PublicKey) != ed25519.PublicKeySize {
			m.logger.Warn("signing key skipped: unsupported", zap.String("kid", k.KID), zap.String("alg", k.Alg))
			continue
		}
		if isAssertionKID(k.KID) != (m.purpose == store.KeyAssertion) {
			// keys are not interchangeable: an assertion key never signs
			// or verifies an access token, nor the reverse
			m.logger.Warn("signing key skipped: its kid is of another purpose", zap.String("purpose", string(m.purpose)), zap.String("kid", k.KID))
			continue
		}
		rk := ringKey{kid: k.KID, pub: ed25519.PublicKey(k.PublicKey), createdAt: k.CreatedAt, activatesAt: k.ActivatesAt}
		seed, err := m.sealer.Open(k.KID, k.SealedPrivate)
		if err == nil && len(seed) == ed25519.SeedSize {
			priv := ed25519.NewKeyFromSeed(seed)
			if pub, ok := priv.Public().(ed25519.PublicKey); ok && pub.Equal(rk.pub) {
				rk.priv = priv
			}
		}
		if rk.priv == nil {
			m.logger.Warn("signing key cannot be unsealed with this master key: published, not used to sign", zap.String("kid", k.KID))
		}
		out = append(out, rk)
	}
	return out
}

// protectedHeaders are the protected headers of a key, one per token type
// it signs: an access-token key signs access and login tokens, an assertion
// key only assertions. Each is {alg EdDSA, kid, typ} (jws.Sign sets alg and
// clones the headers: they are shared by every signature).
type protectedHeaders struct {
	access    jws.Headers // typ at+jwt
	login     jws.Headers // typ erp-login+jwt
	assertion jws.Headers // typ erp-edge+jwt
}

func newHeader(kid, typ string) (jws.Headers, error) {
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, kid); err != nil {
		return nil, fmt.Errorf("jws header of key %s: %w", kid, err)
	}
	if err := h.Set(jws.TypeKey, typ); err != nil {
		return nil, fmt.Errorf("jws header of key %s: %w", kid, err)
	}
	return h, nil
}

func newProtectedHeaders(kid string) (protectedHeaders, error) {
	var ph protectedHeaders
	var err error
	if isAssertionKID(kid) {
		ph.assertion, err = newHeader(kid, contract.TypAssertion)
		return ph, err
	}
	if ph.access, err = newHeader(kid, TypAccess); err != nil {
		return ph, err
	}
	ph.login, err = newHeader(kid, typLogin)
	return ph, err
}

// header is k's protected header for typ (nil for a typ it does not sign).
func (k *ringKey) header(typ string) jws.Headers {
	switch typ {
	case TypAccess:
		return k.hdr.access
	case typLogin:
		return k.hdr.login
	case contract.TypAssertion:
		return k.hdr.assertion
	}
	return nil
}

// b64 encodes the random parts of tokens (jti).
var b64 = base64.RawURLEncoding

// signJWT signs payload with k as a compact JWS with the given typ, through
// jwx (issue #14: the hand-written signer was less than twice as fast, see
// BenchmarkSignAccess and the figures in the commit that switched).
func signJWT(k ringKey, typ string, payload []byte) (string, error) {
	hdr := k.header(typ)
	if hdr == nil {
		return "", fmt.Errorf("sign: no header for typ %q", typ)
	}
	if len(k.priv) != ed25519.PrivateKeySize {
		return "", errors.New("sign: key has no private part")
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return string(tok), nil
}

var errBadToken = errors.New("invalid token")

// maxTokenLen bounds what verifyJWT looks at.
const maxTokenLen = 8 << 10

// verifyJWT checks a compact JWS signed by a key of the ring with exactly
// typ and returns its payload: jwtverify.Parse (strict encoding and header,
// no crit, b64 or key references), a kid of the ring, its alg (EdDSA) and
// signature (jwx).
func (r *keyRing) verifyJWT(token, typ string) ([]byte, error) {
	t, err := jwtverify.Parse(token, maxTokenLen)
	if err != nil || t.Header.Typ != typ {
		return nil, errBadToken
	}
	k, ok := r.lookup(t.Header.Kid)
	if !ok {
		return nil, errBadToken
	}
	payload, err := t.Verify(k.verify)
	if err != nil {
		return nil, errBadToken
	}
	return payload, nil
}

// key is the ring as a jwtverify.KeyFunc.
func (r *keyRing) key(_ context.Context, kid string) (jwtverify.Key, error) {
	if k, ok := r.lookup(kid); ok {
		return k.verify, nil
	}
	return jwtverify.Key{}, jwtverify.ErrUnknownKey
}
