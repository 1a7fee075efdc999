package authsvc

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"hash"
	"net/url"
	"strconv"
	"time"
)

// TOTP as erpgate uses it (RFC 6238): HMAC-SHA-1, 6 digits, 30-second
// steps from the Unix epoch, at most one step of clock skew either way.
const (
	TOTPDigits     = 6
	TOTPPeriod     = 30 * time.Second
	TOTPSkew       = 1
	totpSecretSize = 20 // 160 bits, RFC 4226 §4 R6's recommended length
)

// totpEncoding is the base32 of authenticator apps: RFC 4648 alphabet, no padding.
var totpEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// HOTP is RFC 4226's HOTP(K, C) with any HMAC hash (RFC 6238 allows
// SHA-1, SHA-256 and SHA-512) and 6 to 8 digits: HMAC over the 8-byte
// big-endian counter, dynamic truncation, modulo 10^digits, zero-padded.
func HOTP(newHash func() hash.Hash, key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(newHash, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	s := strconv.FormatUint(uint64(bin%mod), 10)
	for len(s) < digits {
		s = "0" + s
	}
	return s
}

// totpStep is the RFC 6238 time step T of t (T0 = 0).
func totpStep(t time.Time, period time.Duration) int64 {
	return t.Unix() / int64(period/time.Second)
}

// TOTPCode is the code of secret at t.
func TOTPCode(secret []byte, t time.Time) string {
	return HOTP(sha1.New, secret, uint64(totpStep(t, TOTPPeriod)), TOTPDigits)
}

// totpMatch reports the time step whose code is code, within TOTPSkew
// steps of now. Every candidate is compared in constant time.
func totpMatch(secret []byte, code string, now time.Time) (int64, bool) {
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := totpStep(now, TOTPPeriod)
	var found int64
	ok := 0
	for d := int64(-TOTPSkew); d <= TOTPSkew; d++ {
		step := cur + d
		if step < 0 {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(HOTP(sha1.New, secret, uint64(step), TOTPDigits)), []byte(code)) == 1 && ok == 0 {
			found, ok = step, 1
		}
	}
	return found, ok == 1
}

// totpURI is the otpauth:// URI authenticator apps import (the Key URI
// Format of Google Authenticator, which every app reads).
func totpURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", totpEncoding.EncodeToString(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", strconv.Itoa(TOTPDigits))
	q.Set("period", strconv.Itoa(int(TOTPPeriod/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}
