package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret (Standard Webhooks).
const SecretPrefix = "whsec_"

// secretBytes is the length of a new secret's key (24 to 32 bytes per
// Standard Webhooks).
const secretBytes = 32

// Sealer seals secrets at rest (authsvc.Sealer: AES-256-GCM under the
// master key, bound to kid).
type Sealer interface {
	Seal(kid string, plaintext []byte) []byte
	Open(kid string, sealed []byte) ([]byte, error)
}

// NewSecret is a fresh signing secret: whsec_ and the standard base64 of
// 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// secretKey is the HMAC key of a whsec_ secret: the base64 after the
// prefix, decoded.
func secretKey(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhooks: a secret starts with whsec_")
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhooks: a secret is whsec_ and standard base64")
	}
	return k, nil
}

// Headers of a signed delivery (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signature is "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func signature(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign sets the Standard Webhooks headers of a delivery of body (the event
// id as webhook-id, stable across attempts; ts the attempt's time): one
// signature per key, space-separated.
func Sign(h http.Header, keys [][]byte, id string, ts time.Time, body []byte) {
	unix := ts.Unix()
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		sigs = append(sigs, signature(k, id, unix, body))
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// Errors of Verify.
var (
	ErrMissingHeaders   = errors.New("webhooks: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrTimestamp        = errors.New("webhooks: timestamp outside the tolerance")
	ErrNoValidSignature = errors.New("webhooks: no valid signature")
)

// Verify is what a receiver does with a delivery: body is signed by
// secret (one of the space-separated v1 signatures matches, compared in
// constant time) and its timestamp is within tolerance of now (0: not
// checked).
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, h, body, tolerance, time.Now())
}

func verifyAt(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(ts, 0))
		if d > tolerance || d < -tolerance {
			return ErrTimestamp
		}
	}
	want := []byte(signature(key, id, ts, body))
	for sig := range strings.FieldsSeq(sigs) {
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrNoValidSignature
}
