// Package idempotency keeps the first answer to a write sent with an
// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) so a retry of
// the same request is answered from the store instead of reaching the
// backend again. It is Caddy-free: erp_idempotency (caddymodules/idempotency)
// is its one user.
//
// A key goes through three states: absent, locked (the first request is in
// flight; the lock names the request's fingerprint and a token of its own,
// and expires after a lease so a crashed instance cannot hold a key forever)
// and done (the stored answer, kept for the retention). Begin takes the lock
// or reports what holds the key; Complete turns the holder's lock into an
// answer; Release drops the holder's lock (a 5xx or a transport failure: the
// client may try again). Complete and Release act only for the lock's
// holder (its token), so a lease that expired and was taken by another
// request is never overwritten.
//
// Two stores: Redis (every instance on one Redis sees the same keys) and
// memory (one process; bounded in total bytes, oldest first out).
package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"sync"
	"time"
)

// MaxKeyLen is the longest Idempotency-Key accepted.
const MaxKeyLen = 255

// ValidKey reports whether k is 1..MaxKeyLen printable ASCII characters
// (space through tilde), as the header's value must be.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

var hashPool = sync.Pool{New: func() any { return sha256.New() }}

// Fingerprint is what makes two requests "the same" for a key: the method,
// the path and the body's SHA-256, hashed together (hex).
func Fingerprint(method, path string, body []byte) string {
	h := hashPool.Get().(hash.Hash)
	h.Reset()
	var bsum [sha256.Size]byte
	h.Write(body)
	h.Sum(bsum[:0])
	h.Reset()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(bsum[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	hashPool.Put(h)
	return hex.EncodeToString(sum[:])
}

// Record is a stored answer: the status, the headers that describe it and
// the body, as the backend sent them.
type Record struct {
	Status int         `json:"s"`
	Header http.Header `json:"h,omitempty"`
	Body   []byte      `json:"b,omitempty"`
}

// Size is the record's approximate size in bytes (what the bounds count).
func (r *Record) Size() int {
	n := len(r.Body) + 16
	for k, vs := range r.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// State is what Begin found.
type State int

const (
	// Started: the caller holds the key's lock and must Complete or Release it.
	Started State = iota
	// Replay: the key holds an answer to the same request (Result.Record).
	Replay
	// InFlight: the same request holds the key's lock (not answered yet).
	InFlight
	// Mismatch: the key was used for a different request.
	Mismatch
)

// Result is Begin's answer.
type Result struct {
	State  State
	Record *Record // Replay only
	Token  string  // Started only: the lock's token (fingerprint + random), for Complete and Release
}

// Store keeps keys. key is already scoped (the caller puts the company in it).
type Store interface {
	Begin(ctx context.Context, key, fingerprint string) (Result, error)
	Complete(ctx context.Context, key, token string, rec *Record) error
	Release(ctx context.Context, key, token string) error
}

// ErrNotHolder: Complete or Release by a caller whose lock is gone (its
// lease expired and the key moved on).
var ErrNotHolder = errors.New("idempotency: the lock is no longer held")

// newToken is a random lock token.
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// stored values (Redis) are one byte of kind, then:
//
//	'L' lock:   fingerprint (64 hex) + token
//	'D' done:   fingerprint (64 hex) + JSON record
const fpLen = 64

func doneValue(fp string, rec *Record) ([]byte, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+fpLen+len(js))
	b = append(b, 'D')
	b = append(b, fp...)
	return append(b, js...), nil
}

// decode reads a stored value into Begin's answer for fingerprint fp.
func decode(v string, fp string) (Result, error) {
	if len(v) < 1+fpLen {
		return Result{}, errors.New("idempotency: malformed stored value")
	}
	if v[1:1+fpLen] != fp {
		return Result{State: Mismatch}, nil
	}
	switch v[0] {
	case 'L':
		return Result{State: InFlight}, nil
	case 'D':
		rec := new(Record)
		if err := json.Unmarshal([]byte(v[1+fpLen:]), rec); err != nil {
			return Result{}, err
		}
		return Result{State: Replay, Record: rec}, nil
	}
	return Result{}, errors.New("idempotency: malformed stored value")
}

// Clock gives the time (tests set it).
type Clock func() time.Time
