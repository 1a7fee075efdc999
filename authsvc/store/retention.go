package store

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// RetentionStore removes what is kept no longer than needed: expired
// sessions with their refresh tokens and ended trusted devices, and audit
// records past the retention period (behind a signed checkpoint per chain).
// Both are platform operations across every company.
type RetentionStore interface {
	// PurgeExpired deletes, at most limit rows of each kind, the sessions
	// (with their refresh tokens) and trusted devices that expired or were
	// revoked before before, and the refresh tokens of live sessions that
	// expired before before. Several instances may run it at once: rows
	// another one is deleting are skipped.
	PurgeExpired(ctx context.Context, before time.Time, limit int) (PurgeCounts, error)
	// PruneAudit removes, per chain, at most limit of the oldest records
	// whose time is before before, never one still waiting in the events
	// outbox, after moving the chain's checkpoint (signed with key, at now)
	// to the last record removed. It returns how many it removed.
	PruneAudit(ctx context.Context, before time.Time, limit int, key AuditKey, now time.Time) (int64, error)
	// AuditCheckpoints are the chains' checkpoints that follow a cut (a
	// chain never cut has none).
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
	// VerifyAuditWith is VerifyAudit with the key that signs checkpoints
	// and erasure attestations: a chain that starts at a checkpoint, or a
	// pseudonymised record, does not verify without it.
	VerifyAuditWith(ctx context.Context, key AuditKey) (AuditCheck, error)
}

// errNoAuditKey: pruning the trail needs the key that signs its checkpoints.
var errNoAuditKey = errors.New("no audit key: the master key is needed to sign retention checkpoints")

// PurgeCounts are the rows one PurgeExpired removed, by kind.
type PurgeCounts struct {
	Sessions       int64 `json:"sessions"`
	RefreshTokens  int64 `json:"refresh_tokens"`
	TrustedDevices int64 `json:"trusted_devices"`
}

// Total is the number of rows removed.
func (c PurgeCounts) Total() int64 { return c.Sessions + c.RefreshTokens + c.TrustedDevices }

// AuditKey signs audit checkpoints and erasure attestations: HMAC-SHA256
// under a key derived from the master key (HKDF-SHA256). A dedicated
// derived key rather than a token signing key: signing keys rotate and are
// deleted once their tokens expire, and a checkpoint must verify for as long
// as the trail is kept. The zero AuditKey signs nothing and verifies nothing.
type AuditKey struct {
	key []byte
}

// NewAuditKey derives the audit key from the 32-byte master key.
func NewAuditKey(master []byte) (AuditKey, error) {
	if len(master) != 32 {
		return AuditKey{}, fmt.Errorf("audit key: the master key must be 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, master, nil, "erpgate audit seal v1", 32)
	if err != nil {
		return AuditKey{}, fmt.Errorf("audit key: %w", err)
	}
	return AuditKey{key: k}, nil
}

// IsZero reports whether k is the zero key (no master key given).
func (k AuditKey) IsZero() bool { return len(k.key) == 0 }

// ID names the key without revealing it (the first 8 bytes of an HMAC of a
// fixed label), so that a report can say a checkpoint was signed by
// another key.
func (k AuditKey) ID() string {
	if k.IsZero() {
		return ""
	}
	return hex.EncodeToString(k.mac([]byte("erpgate audit key id"))[:8])
}

func (k AuditKey) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, k.key)
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

func (k AuditKey) valid(sig []byte, parts ...[]byte) bool {
	return !k.IsZero() && len(sig) == sha256.Size && hmac.Equal(sig, k.mac(parts...))
}

func int64Bytes(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

// AuditCheckpoint is where a chain starts after a retention cut: the seq
// and hash of the last removed record (the first kept record's prev_hash),
// when the cut was made, how many records of the chain were removed so
// far, and the signature over all of it.
type AuditCheckpoint struct {
	Stripe    int64
	Seq       int64
	Hash      []byte
	CutAt     time.Time
	Removed   int64
	KeyID     string
	Signature []byte
}

func (c AuditCheckpoint) signed() [][]byte {
	return [][]byte{[]byte("erpgate audit checkpoint"), int64Bytes(c.Stripe), int64Bytes(c.Seq), c.Hash,
		[]byte(micro(c.CutAt).Format(time.RFC3339Nano)), int64Bytes(c.Removed)}
}

// sign sets the checkpoint's key id and signature.
func (c AuditCheckpoint) sign(k AuditKey) AuditCheckpoint {
	c.CutAt = micro(c.CutAt)
	c.KeyID, c.Signature = k.ID(), k.mac(c.signed()...)
	return c
}

// check reports why the checkpoint can't be trusted, or "" when it can.
func (c AuditCheckpoint) check(k AuditKey) string {
	switch {
	case k.IsZero():
		return fmt.Sprintf("chain %d starts at a signed retention checkpoint (record %d); verifying it needs the master key (ERP_MASTER_KEY)", c.Stripe, c.Seq)
	case !k.valid(c.Signature, c.signed()...):
		if c.KeyID != "" && c.KeyID != k.ID() {
			return fmt.Sprintf("the retention checkpoint of chain %d (record %d) was signed by another key (%s, not %s)", c.Stripe, c.Seq, c.KeyID, k.ID())
		}
		return fmt.Sprintf("the retention checkpoint of chain %d (record %d) does not match its signature (the checkpoint was edited)", c.Stripe, c.Seq)
	}
	return ""
}

// erasureParts is what an erasure attestation signs: the record's seq, its
// original hash, and the hash its pseudonymised contents would have.
func erasureParts(e Event) [][]byte {
	return [][]byte{[]byte("erpgate audit erasure"), int64Bytes(e.Seq), e.Hash, e.ComputeHash(e.PrevHash)}
}

// Pseudonymise replaces the personal fields of a record about a person
// being erased (IP, user agent, email and name in Details, their user id
// by pseudonym) and attests the change with key. Hash and PrevHash stay:
// the chain links as before. A record pseudonymised once more keeps its
// original hash, so it is attested again.
func (e Event) Pseudonymise(userID, email, pseudonym string, key AuditKey) Event {
	e = cloneEvent(e)
	selfActed := e.ActorID == userID || e.ActorID == ""
	if e.ActorID == userID {
		e.ActorID = pseudonym
	}
	if e.SubjectID == userID {
		e.SubjectID = pseudonym
	}
	if selfActed {
		e.IP, e.UserAgent = "", ""
	}
	for k, v := range e.Details {
		switch {
		case k == "email" && v != "":
			e.Details[k] = ErasedValue
		case (k == "name" || k == "phone" || k == "device") && v != "" && !companyOwned(e.Type):
			e.Details[k] = ErasedValue
		case v == userID:
			e.Details[k] = pseudonym
		case email != "" && v == email:
			e.Details[k] = ErasedValue
		}
	}
	e.Erasure = key.mac(erasureParts(e)...)
	return e
}

// ErasedValue stands for a personal value removed by an erasure.
const ErasedValue = "[erased]"

// companyOwned: records whose "name" is a company's thing (a company, an
// API key, an SSO connection), not a person's.
func companyOwned(typ string) bool {
	for _, p := range []string{"admin.company.", "api_key.", "admin.sso."} {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// checkErasure reports why a pseudonymised record can't be trusted, or "".
func checkErasure(e Event, k AuditKey) string {
	switch {
	case k.IsZero():
		return "the record was pseudonymised by an erasure; verifying it needs the master key (ERP_MASTER_KEY)"
	case !k.valid(e.Erasure, erasureParts(e)...):
		return "its contents do not match its erasure attestation (the record was edited)"
	}
	return ""
}

// startAt makes the verifier start after checkpoint c.
func (v *chainVerifier) startAt(c AuditCheckpoint) {
	v.prevSeq, v.prevHash = c.Seq, bytes.Clone(c.Hash)
}
