package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference vector (the spec's and every reference
// library's tests).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// independentSignature recomputes a signature from the spec alone, not
// from the package's code, so a bug on both sides can't agree with itself.
func independentSignature(t testing.TB, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := secretKey(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	Sign(h, [][]byte{key}, vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if got := h.Get(HeaderSignature); got != vecSig {
		t.Fatalf("signature %q, want the reference %q", got, vecSig)
	}
	if h.Get(HeaderID) != vecID || h.Get(HeaderTimestamp) != strconv.Itoa(vecTS) {
		t.Fatalf("headers %v", h)
	}
	if got := independentSignature(t, vecSecret, vecID, strconv.Itoa(vecTS), []byte(vecBody)); got != vecSig {
		t.Fatalf("the test's own implementation gives %q", got)
	}
	if err := verifyAt(vecSecret, h, []byte(vecBody), 5*time.Minute, time.Unix(vecTS+60, 0)); err != nil {
		t.Fatalf("Verify of the reference vector: %v", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	s1, _ := NewSecret()
	s2, _ := NewSecret()
	k1, _ := secretKey(s1)
	k2, _ := secretKey(s2)
	body := []byte(`{"specversion":"1.0","id":"e1"}`)
	now := time.Now()
	signed := func(keys ...[]byte) http.Header {
		h := http.Header{}
		Sign(h, keys, "e1", now, body)
		return h
	}
	cases := []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		at     time.Time
		want   error
	}{
		{"one signature", s1, signed(k1), body, now, nil},
		{"rotation: the new secret verifies", s1, signed(k1, k2), body, now, nil},
		{"rotation: the old secret verifies", s2, signed(k1, k2), body, now, nil},
		{"another secret", s2, signed(k1), body, now, ErrNoValidSignature},
		{"body changed", s1, signed(k1), []byte(`{"specversion":"1.0","id":"e2"}`), now, ErrNoValidSignature},
		{"too old", s1, signed(k1), body, now.Add(6 * time.Minute), ErrTimestamp},
		{"from the future", s1, signed(k1), body, now.Add(-6 * time.Minute), ErrTimestamp},
		{"no headers", s1, http.Header{}, body, now, ErrMissingHeaders},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := verifyAt(c.secret, c.h, c.body, 5*time.Minute, c.at); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("id changed", func(t *testing.T) {
		h := signed(k1)
		h.Set(HeaderID, "e2")
		if err := verifyAt(s1, h, body, 0, now); !errors.Is(err, ErrNoValidSignature) {
			t.Fatal(err)
		}
	})
	t.Run("the independent implementation agrees", func(t *testing.T) {
		h := signed(k1, k2)
		sigs := strings.Fields(h.Get(HeaderSignature))
		ts := h.Get(HeaderTimestamp)
		if len(sigs) != 2 || sigs[0] != independentSignature(t, s1, "e1", ts, body) || sigs[1] != independentSignature(t, s2, "e1", ts, body) {
			t.Fatalf("signatures %q", sigs)
		}
	})
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := secretKey(s)
	if !strings.HasPrefix(s, "whsec_") || err != nil || len(k) < 24 || len(k) > 32 {
		t.Fatalf("secret %q: key of %d bytes, %v", s, len(k), err)
	}
	if s2, _ := NewSecret(); s2 == s {
		t.Fatal("two secrets alike")
	}
}

func TestParseBackoff(t *testing.T) {
	t.Parallel()
	got, err := ParseBackoff(" 5s 30s  2m 10m 1h 6h 24h ")
	if err != nil || len(got) != 7 || got[0] != 5*time.Second || got[6] != 24*time.Hour {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "5s soon", "-1s", "0s", strings.Repeat("1s ", 21)} {
		if _, err := ParseBackoff(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	for range 1000 {
		if d := jitter(10 * time.Second); d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("jitter of 10s: %v", d)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	key, _ := secretKey(vecSecret)
	body := []byte(strings.Repeat("x", 1024))
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		Sign(h, [][]byte{key}, vecID, time.Unix(vecTS, 0), body)
	}
}
