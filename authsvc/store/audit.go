package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Event types of the audit trail. They are stored, filtered on and shown
// to admins: never rename one.
const (
	EventLoginSucceeded       = "login.succeeded"
	EventLoginFailed          = "login.failed"
	EventLoginThrottled       = "login.throttled"
	EventMFAEnrollStarted     = "mfa.enroll_started"
	EventMFAEnrolled          = "mfa.enrolled"
	EventMFADisabled          = "mfa.disabled"
	EventMFAVerified          = "mfa.verified"
	EventMFARecoveryUsed      = "mfa.recovery_code_used"
	EventMFAFailed            = "mfa.failed"
	EventMFAThrottled         = "mfa.throttled"
	EventCompanySelected      = "company.selected"
	EventCompanySwitched      = "company.switched"
	EventTokenRefreshed       = "token.refreshed"
	EventRefreshReuse         = "token.refresh_reuse"
	EventLogout               = "logout"
	EventLogoutAll            = "logout.all"
	EventSessionRevoked       = "session.revoked"
	EventPasswordChanged      = "password.changed"
	EventPasswordChangeFailed = "password.change_failed"
	EventAPIKeyCreated        = "api_key.created"
	EventAPIKeyRotated        = "api_key.rotated"
	EventAPIKeyRevoked        = "api_key.revoked"
	EventCompanyCreated       = "admin.company.created"
	EventCompanyUpdated       = "admin.company.updated"
	EventCompanyCellChanged   = "admin.company.cell_changed"
	EventUserCreated          = "admin.user.created"
	EventUserUpdated          = "admin.user.updated"
	EventUserPasswordReset    = "admin.user.password_reset"
	EventMembershipSet        = "admin.membership.set"
	EventMembershipRemoved    = "admin.membership.removed"

	// Refusals (Details["reason"] says why, from the Reason* lists of the
	// auth service and the edge). Failed logins and second factors keep
	// their own types above (login.failed, mfa.failed).
	EventCompanySelectRefused = "company.select_refused"
	EventCompanySwitchRefused = "company.switch_refused"
	EventLoginTokenReplayed   = "login_token.replayed"
	// EventLoginRiskRefused: a proved first factor whose login the risk
	// score refused (Details: first_factor, score, signals).
	EventLoginRiskRefused = "login.risk_refused"
	EventRefreshRefused   = "token.refresh_refused"
	EventBearerRefused    = "token.bearer_refused"
	// EventEdgeCredentialRefused is one refusal of a token or API key on a
	// proxied route, recorded one by one up to the edge's sample per
	// interval; EventEdgeRefusalSummary stands for the rest of an interval
	// (Details: count, total, dropped, window_start, window_end).
	EventEdgeCredentialRefused = "edge.credential_refused"
	EventEdgeRefusalSummary    = "edge.credential_refused_summary"
)

// Event is one record of the audit trail: who (ActorID: a user id,
// `apikey:<id>`, or empty for the system or an unknown caller), in which
// company, did what (Type, SubjectID: the object acted on, Details), when,
// from where (IP, UserAgent) and in which request. Never a secret, token,
// password or code in it.
//
// Seq, PrevHash and Hash are set by the store when it appends the event:
// Seq counts from 1 without gaps, PrevHash is the Hash of record Seq-1
// (32 zero bytes for the first), and Hash = SHA-256(PrevHash ||
// canonical JSON of the other fields). Editing, deleting or reordering a
// record breaks the chain at that record.
type Event struct {
	Seq       int64
	Time      time.Time
	Type      string
	ActorID   string
	CompanyID string
	SubjectID string
	IP        string
	UserAgent string
	RequestID string
	Details   map[string]string
	PrevHash  []byte
	Hash      []byte
	// Erasure is set on a record pseudonymised by the erasure of a person
	// (see Pseudonymise): Hash is the original record's, and Erasure
	// attests the replacement of its personal fields.
	Erasure []byte
}

// GenesisHash is the PrevHash of the first record.
var GenesisHash = make([]byte, sha256.Size)

// canonicalEvent is the hashed form of an event: fixed field order, times
// in UTC at microseconds (what Postgres keeps), Details with sorted keys
// (encoding/json sorts map keys).
type canonicalEvent struct {
	Seq       int64             `json:"seq"`
	Time      string            `json:"time"`
	Type      string            `json:"type"`
	ActorID   string            `json:"actor_id"`
	CompanyID string            `json:"company_id"`
	SubjectID string            `json:"subject_id"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
}

// ComputeHash is the hash the event must carry after prev.
func (e Event) ComputeHash(prev []byte) []byte {
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	b, err := json.Marshal(canonicalEvent{
		Seq: e.Seq, Time: micro(e.Time).Format(time.RFC3339Nano), Type: e.Type, ActorID: e.ActorID,
		CompanyID: e.CompanyID, SubjectID: e.SubjectID, IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID,
		Details: details,
	})
	if err != nil { // a struct of strings: cannot happen
		panic(fmt.Sprintf("audit: encode event: %v", err))
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(b)
	return h.Sum(nil)
}

// clean makes an event storable and hashable the same way everywhere:
// valid UTF-8 without NUL (Postgres text refuses both), bounded lengths,
// time at microseconds in UTC.
func (e Event) clean() Event {
	s := func(v string, n int) string {
		v = strings.ToValidUTF8(strings.ReplaceAll(v, "\x00", ""), "\uFFFD")
		if len(v) > n {
			v = strings.ToValidUTF8(v[:n], "")
		}
		return v
	}
	e.Time = micro(e.Time)
	e.Type, e.ActorID, e.CompanyID, e.SubjectID = s(e.Type, 64), s(e.ActorID, 128), s(e.CompanyID, 128), s(e.SubjectID, 256)
	e.IP, e.UserAgent, e.RequestID = s(e.IP, 64), s(e.UserAgent, 512), s(e.RequestID, 64)
	d := make(map[string]string, len(e.Details))
	for k, v := range e.Details {
		d[s(k, 64)] = s(v, 512)
	}
	e.Details = d
	return e
}

// seal sets the event's place in its chain: seq, right after (prevSeq, prevHash).
func (e Event) seal(seq int64, prevHash []byte) Event {
	e = e.clean()
	e.Seq = seq
	e.PrevHash = bytes.Clone(prevHash)
	e.Hash = e.ComputeHash(prevHash)
	return e
}

// AuditLog is the hash-chained audit trail. The other domains append to it
// with their changes; these methods append what changes nothing and read it.
type AuditLog interface {
	// AppendAudit appends an event that records no state change (a failed
	// login, a throttled attempt, a login that issued a login token).
	AppendAudit(ctx context.Context, ev Event) error
	// ListAudit lists the events that match f, newest first, with the total count.
	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]Event, int64, error)
	// VerifyAudit re-computes the whole chain and reports the first record
	// that does not match (see AuditCheck).
	VerifyAudit(ctx context.Context) (AuditCheck, error)
}

// AuditFilter selects events; empty fields match everything.
type AuditFilter struct {
	CompanyID string
	// UserID matches events the user did (actor) or that were done to them (subject).
	UserID string
	// Types matches any of the event types.
	Types []string
	// Since and Until bound the event time: Since <= time < Until.
	Since time.Time
	Until time.Time
}

func (f AuditFilter) match(e Event) bool {
	if f.CompanyID != "" && e.CompanyID != f.CompanyID {
		return false
	}
	if f.UserID != "" && e.ActorID != f.UserID && e.SubjectID != f.UserID {
		return false
	}
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			ok = ok || t == e.Type
		}
		if !ok {
			return false
		}
	}
	if !f.Since.IsZero() && e.Time.Before(micro(f.Since)) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(micro(f.Until)) {
		return false
	}
	return true
}

// AuditCheck is the result of verifying the chain. OK: every record
// matches its hash, follows its predecessor, and the last one is the head
// the store recorded. Otherwise BadSeq names the first record that does
// not (for a record deleted from the middle, the missing sequence number;
// for a cut-off tail, the first missing one) and Problem says how.
type AuditCheck struct {
	OK       bool
	Records  int64
	BadSeq   int64
	BadType  string // type of the bad record, when it exists
	Problem  string
	HeadHash []byte
	// Checkpoints is the number of chains that start at a signed
	// retention checkpoint (their older records were removed).
	Checkpoints int
}

func (c AuditCheck) String() string {
	if c.OK {
		cut := ""
		if c.Checkpoints > 0 {
			cut = fmt.Sprintf(" (%d chains start at signed retention checkpoints)", c.Checkpoints)
		}
		return fmt.Sprintf("audit trail intact: %d records, head %s%s", c.Records, hex.EncodeToString(c.HeadHash), cut)
	}
	t := ""
	if c.BadType != "" {
		t = " (" + c.BadType + ")"
	}
	return fmt.Sprintf("audit trail broken at record %d%s: %s", c.BadSeq, t, c.Problem)
}

// chainVerifier checks the records of one chain fed in sequence order. A
// chain's seqs advance by step (the number of chains) from start.
type chainVerifier struct {
	key      AuditKey // checks erasure attestations
	step     int64
	prevSeq  int64
	prevHash []byte
	records  int64
	bad      *AuditCheck
}

func newChainVerifier() *chainVerifier {
	return newStripeVerifier(0, 1)
}

// newStripeVerifier checks chain stripe of n, whose first record is seq stripe+1.
func newStripeVerifier(stripe, n int64) *chainVerifier {
	return &chainVerifier{step: n, prevSeq: stripe + 1 - n, prevHash: GenesisHash}
}

// next checks one record; it returns false once the chain is broken.
func (v *chainVerifier) next(e Event) bool {
	if v.bad != nil {
		return false
	}
	want := v.prevSeq + v.step
	switch {
	case e.Seq != want:
		v.bad = &AuditCheck{BadSeq: want, Problem: fmt.Sprintf("record %d is missing (deleted); the next record is %d", want, e.Seq)}
	case !bytes.Equal(e.PrevHash, v.prevHash):
		v.bad = &AuditCheck{BadSeq: e.Seq, BadType: e.Type, Problem: fmt.Sprintf("its prev_hash does not match the hash of record %d (a record was replaced or re-hashed)", v.prevSeq)}
	case e.Erasure != nil:
		if p := checkErasure(e, v.key); p != "" {
			v.bad = &AuditCheck{BadSeq: e.Seq, BadType: e.Type, Problem: p}
		}
	case !bytes.Equal(e.ComputeHash(e.PrevHash), e.Hash):
		v.bad = &AuditCheck{BadSeq: e.Seq, BadType: e.Type, Problem: "its contents do not match its hash (the record was edited)"}
	}
	if v.bad != nil {
		return false
	}
	v.prevSeq, v.prevHash = e.Seq, e.Hash
	v.records++
	return true
}

// finish compares the last record with the head the store recorded.
func (v *chainVerifier) finish(headSeq int64, headHash []byte) AuditCheck {
	if v.bad != nil {
		v.bad.Records = v.records
		return *v.bad
	}
	if headSeq != v.prevSeq || !bytes.Equal(headHash, v.prevHash) {
		if headSeq > v.prevSeq {
			return AuditCheck{Records: v.records, BadSeq: v.prevSeq + v.step,
				Problem: fmt.Sprintf("the trail ends at record %d but %d were written (records deleted from the end)", v.prevSeq, headSeq)}
		}
		return AuditCheck{Records: v.records, BadSeq: v.prevSeq, Problem: "the last record does not match the recorded head of the chain"}
	}
	return AuditCheck{OK: true, Records: v.records, HeadHash: bytes.Clone(v.prevHash)}
}
