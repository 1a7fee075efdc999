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
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
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

// NewSigningKey makes a fresh Ed25519 key, sealed, published at now and
// signing from activatesAt. Its kid is the RFC 7638 thumbprint of the public key.
func NewSigningKey(sealer *Sealer, now, activatesAt time.Time) (store.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	kid, err := thumbprint(pub)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{
		KID: kid, Alg: AlgEdDSA, PublicKey: pub, SealedPrivate: sealer.Seal(kid, priv.Seed()),
		CreatedAt: now, ActivatesAt: activatesAt,
	}, nil
}

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
}

// keyRing is an immutable snapshot of the published keys, oldest activation first.
type keyRing struct {
	keys     []ringKey
	set      jwk.Set // public keys, with kid, alg and use
	jwksJSON []byte
}

func newKeyRing(keys []ringKey) (*keyRing, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		jk, err := jwk.Import(k.pub)
		if err != nil {
			return nil, fmt.Errorf("import public key %s: %w", k.kid, err)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: k.kid, jwk.AlgorithmKey: jwa.EdDSA(), jwk.KeyUsageKey: "sig"} {
			if err := jk.Set(name, v); err != nil {
				return nil, fmt.Errorf("set %s on key %s: %w", name, k.kid, err)
			}
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("add key %s: %w", k.kid, err)
		}
	}
	js, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	return &keyRing{keys: keys, set: set, jwksJSON: js}, nil
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

// keyManager keeps the ring in sync with the store and rotates on schedule.
type keyManager struct {
	store        store.Store
	sealer       *Sealer
	logger       *zap.Logger
	rotation     time.Duration // a key signs for this long
	publishDelay time.Duration // a new key is published this long before it signs
	accessTTL    time.Duration
	reload       time.Duration // how often instances re-read the keys
	ring         atomic.Pointer[keyRing]
}

// sync reads the keys, creates the first one or the next one when due,
// deletes those whose every token has expired, and installs the new ring.
func (m *keyManager) sync(ctx context.Context, now time.Time) error {
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	changed := false
	// Retire: a key is no longer needed once its successor has been active
	// for longer than an access token lives (plus a reload interval, for
	// instances that signed with it before they noticed the successor).
	keep := stored[:0:0]
	for i, k := range stored {
		if i+1 < len(stored) {
			succ := stored[i+1]
			if !succ.ActivatesAt.After(now) && now.Sub(succ.ActivatesAt) > m.accessTTL+m.reload+time.Minute {
				if err := m.store.DeleteSigningKey(ctx, k.KID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
				m.logger.Info("signing key retired", zap.String("kid", k.KID))
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
		if err := m.add(ctx, now, now); err != nil {
			return err
		}
		changed = true
	case ok && !pending && now.Add(m.publishDelay).Sub(signer.activatesAt) >= m.rotation:
		if err := m.add(ctx, now, now.Add(m.publishDelay)); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		stored, err = m.store.ListSigningKeys(ctx)
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
	k, err := NewSigningKey(m.sealer, now, now.Add(activateIn))
	if err != nil {
		return "", err
	}
	if err := m.store.AddSigningKey(ctx, k); err != nil {
		return "", err
	}
	m.logger.Info("signing key published", zap.String("kid", k.KID), zap.Time("activates_at", k.ActivatesAt))
	return k.KID, m.sync(ctx, now)
}

func (m *keyManager) add(ctx context.Context, now, activatesAt time.Time) error {
	k, err := NewSigningKey(m.sealer, now, activatesAt)
	if err != nil {
		return err
	}
	if err := m.store.AddSigningKey(ctx, k); err != nil {
		return err
	}
	m.logger.Info("signing key published", zap.String("kid", k.KID), zap.Time("activates_at", activatesAt))
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

// signJWT signs payload with k as a compact JWS with the given typ.
func signJWT(k ringKey, typ string, payload []byte) (string, error) {
	h := jws.NewHeaders()
	for name, v := range map[string]any{jws.KeyIDKey: k.kid, jws.TypeKey: typ} {
		if err := h.Set(name, v); err != nil {
			return "", fmt.Errorf("sign: header %s: %w", name, err)
		}
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return string(b), nil
}

var errBadToken = errors.New("invalid token")

// verifyJWT checks a compact JWS signed by a key of the ring with typ and
// returns its payload. Only EdDSA; kid must name a ring key; no crit, no b64.
func (r *keyRing) verifyJWT(token, typ string) ([]byte, error) {
	if len(token) > 8<<10 {
		return nil, errBadToken
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	dot := -1
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			dot = i
			break
		}
	}
	if dot <= 0 {
		return nil, errBadToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[:dot])
	if err != nil || json.Unmarshal(raw, &hdr) != nil {
		return nil, errBadToken
	}
	if hdr.Alg != AlgEdDSA || hdr.Typ != typ {
		return nil, errBadToken
	}
	k, ok := r.lookup(hdr.Kid)
	if !ok {
		return nil, errBadToken
	}
	payload, err := jws.VerifyCompactFast(k.pub, []byte(token), jwa.EdDSA())
	if err != nil {
		return nil, errBadToken
	}
	return payload, nil
}
