package authsvc

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP as erpgate uses it (RFC 6238): HMAC-SHA-1, 6 digits, 30-second
// steps from the Unix epoch, at most one step of clock skew either way.
// github.com/pquerna/otp draws the secret, writes the otpauth:// URI and
// computes and compares the codes; this file fixes the parameters and
// finds which step matched, which the replay guard in mfa.go needs and
// pquerna's totp.Validate does not report.
const (
	TOTPDigits     = 6
	TOTPPeriod     = 30 * time.Second
	TOTPSkew       = 1
	totpSecretSize = 20 // 160 bits, RFC 4226 §4 R6's recommended length
)

// totpEncoding is the base32 of authenticator apps: RFC 4648 alphabet, no padding.
var totpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// totpOpts are the parameters of one step's code.
var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// newTOTPKey draws a new secret for account and returns it with its key:
// the otpauth:// URI authenticator apps import (the Key URI Format of
// Google Authenticator, which every app reads) and its parameters.
func newTOTPKey(issuer, account string) (*otp.Key, []byte, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(TOTPPeriod / time.Second),
		SecretSize:  totpSecretSize,
		Digits:      totpOpts.Digits,
		Algorithm:   totpOpts.Algorithm,
		Rand:        rand.Reader,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("totp: new key: %w", err)
	}
	secret, err := totpEncoding.DecodeString(key.Secret())
	if err != nil {
		return nil, nil, fmt.Errorf("totp: new key: decode secret: %w", err)
	}
	return key, secret, nil
}

// totpStep is the RFC 6238 time step T of t (T0 = 0).
func totpStep(t time.Time) int64 {
	return t.Unix() / int64(TOTPPeriod/time.Second)
}

// totpMatch reports the time step whose code is code, within TOTPSkew
// steps of now. Every candidate is compared (in constant time, by
// pquerna), also after a match, so the answer's timing does not tell
// which step matched.
func totpMatch(secret []byte, code string, now time.Time) (int64, bool) {
	if len(code) != TOTPDigits {
		return 0, false
	}
	b32 := totpEncoding.EncodeToString(secret)
	cur := totpStep(now)
	var found int64
	ok := false
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		step := cur + d
		if step < 0 {
			continue
		}
		match, err := hotp.ValidateCustom(code, uint64(step), b32, totpOpts)
		if err == nil && match && !ok {
			found, ok = step, true
		}
	}
	return found, ok
}
