package authsvc

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// event starts the audit record of what the call does: when, the caller
// as far as it is known (c.meta's user and company), client address, user
// agent and request id. The caller adds the subject and details; never a
// secret, token, password or code.
func (s *Service) event(c *call, typ string) store.Event {
	return store.Event{
		Time: s.clock.Now(), Type: typ, ActorID: c.meta.UserID, CompanyID: c.meta.CompanyID,
		IP: c.ip, UserAgent: truncate(c.r.UserAgent(), 512), RequestID: c.meta.RequestID,
	}
}

// systemEvent is the record of a change made by the service itself or an
// operator's command (no HTTP request).
func (s *Service) systemEvent(typ, subject string, details map[string]string) store.Event {
	return store.Event{Time: s.clock.Now(), Type: typ, SubjectID: subject, Details: details}
}

// record appends an event that goes with no state change. A trail that
// can't be written fails the request: an auth event must not go unrecorded.
// The write has its own Timeout and outlives the caller's cancellation: the
// request's deadline may be nearly spent (a login that waited for a
// hashing slot), and what it did is recorded all the same.
func (s *Service) record(ctx context.Context, ev store.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	countAudit(ev.Type)
	return s.store.AppendAudit(ctx, ev)
}

// Reasons of the auth service's refusal records (Details["reason"]): a
// short fixed list, stored and filtered on — never rename one.
const (
	ReasonInvalidLoginToken = "invalid_login_token" // forged, expired or not a login token
	ReasonAlreadyUsed       = "already_used"        // a spent login token came back
	ReasonMFAPending        = "mfa_pending"         // select-company before the second factor
	ReasonMFANotPending     = "mfa_not_pending"     // a second factor for a token that needs none
	ReasonMFAOff            = "mfa_off"             // TOTP was turned off since the login
	ReasonRisk              = "risk"                // the login's risk score reached the refusal threshold
	ReasonMalformedCode     = "malformed_code"      // not a TOTP or recovery code at all
	ReasonNotMember         = "not_member"          // no such company, or no access to it
	ReasonUserDisabled      = "user_disabled"
	ReasonCompanyDisabled   = "company_disabled"
	ReasonSessionEnded      = "session_ended"   // revoked, logged out or past its lifetime
	ReasonUnknownSession    = "unknown_session" // a valid token of a session the store doesn't know
	ReasonMalformed         = "malformed"       // a refresh token that can't be one
	ReasonUnknown           = "unknown"         // a refresh token never issued (or long gone)
	ReasonInactive          = "inactive"        // an expired refresh token or an ended session
	ReasonMissing           = "missing"         // no bearer token
	ReasonAmbiguous         = "ambiguous"       // more than one credential in the request
	ReasonInvalid           = "invalid"         // a bearer token that does not verify
	ReasonExpired           = "expired"         // a bearer token past its exp
)

// refuse records one refusal of the call — its type, the reason from the
// list above, the actor when known (c.meta), address and request id, and
// details such as the company asked for; never the credential — and
// returns refusal, or the trail's error when the record can't be written.
func (s *Service) refuse(c *call, typ, reason string, refusal error, details ...string) error {
	ev := s.event(c, typ)
	ev.Details = map[string]string{"reason": reason}
	for i := 0; i+1 < len(details); i += 2 {
		ev.Details[details[i]] = details[i+1]
	}
	if err := s.record(c.ctx, ev); err != nil {
		return err
	}
	return refusal
}

// bearerReason is the reason of a bearer token that did not verify.
func bearerReason(err error) string {
	if e, ok := contract.AsError(err); ok && e.Code == contract.CodeTokenExpired {
		return ReasonExpired
	}
	return ReasonInvalid
}

// Record appends an event that comes from outside the service's HTTP API:
// the edge's refusals of credentials on proxied routes. Time defaults to
// the service's clock. The caller keeps secrets out of it.
func (s *Service) Record(ctx context.Context, ev store.Event) error {
	if err := s.Ready(ctx); err != nil {
		return err
	}
	if ev.Time.IsZero() {
		ev.Time = s.clock.Now()
	}
	return s.store.AppendAudit(ctx, ev)
}

// VerifyAudit re-computes the audit trail's hash chain (what `gateway erp
// audit verify` runs against Postgres), with the service's audit key:
// chains cut by retention and pseudonymised records verify too.
func (s *Service) VerifyAudit(ctx context.Context) (store.AuditCheck, error) {
	if err := s.Ready(ctx); err != nil {
		return store.AuditCheck{}, err
	}
	return s.store.VerifyAuditWith(ctx, s.auditKey)
}

// auditView is an audit record as the admin API shows it.
type auditView struct {
	ID        int64             `json:"id"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	ActorID   string            `json:"actor_id"`
	CompanyID string            `json:"company_id"`
	SubjectID string            `json:"subject_id"`
	IP        string            `json:"ip"`
	UserAgent string            `json:"user_agent"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

func viewEvent(e store.Event) auditView {
	d := e.Details
	if d == nil {
		d = map[string]string{}
	}
	return auditView{ID: e.Seq, Time: e.Time, Type: e.Type, ActorID: e.ActorID, CompanyID: e.CompanyID, SubjectID: e.SubjectID,
		IP: e.IP, UserAgent: e.UserAgent, RequestID: e.RequestID, Details: d, PrevHash: hexString(e.PrevHash), Hash: hexString(e.Hash)}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

// Pagination of admin listings: ?page (from 1) and ?limit (1..maxLimit).
const (
	defaultLimit = 50
	maxLimit     = 200
)

func pageParams(c *call) (store.Page, int, int, error) {
	q := c.r.URL.Query()
	page, limit := 1, defaultLimit
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return store.Page{}, 0, 0, invalid("page", "page is a number from 1")
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return store.Page{}, 0, 0, invalid("limit", "limit is a number from 1 to "+strconv.Itoa(maxLimit))
		}
		limit = n
	}
	return store.Page{Offset: (page - 1) * limit, Limit: limit}, page, limit, nil
}

func (s *Service) handleAdminAudit(c *call) (int, any, error) {
	_, err := s.platformAdmin(c)
	if err != nil {
		return 0, nil, err
	}
	pg, page, limit, err := pageParams(c)
	if err != nil {
		return 0, nil, err
	}
	q := c.r.URL.Query()
	f := store.AuditFilter{CompanyID: q.Get("company_id"), UserID: q.Get("user_id")}
	for _, v := range q["type"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.Types = append(f.Types, t)
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return 0, nil, invalid(p.name, p.name+" is an RFC 3339 time, e.g. 2026-03-01T12:00:00Z")
			}
			*p.dst = t
		}
	}
	events, total, err := s.store.ListAudit(c.ctx, f, pg)
	if err != nil {
		return 0, nil, err
	}
	out := make([]auditView, 0, len(events))
	for _, e := range events {
		out = append(out, viewEvent(e))
	}
	return http.StatusOK, paged{data: out, page: page, limit: limit, total: total}, nil
}

// paged is a collection answer: data with the envelope's pagination.
type paged struct {
	data        any
	page, limit int
	total       int64
}

func (p paged) hasNext() bool { return int64(p.page)*int64(p.limit) < p.total }

// errConflict is the answer to a create of something that exists.
func errConflict(msg string) error {
	return contract.NewError(http.StatusConflict, contract.CodeConflict, msg)
}

func errNotFound(msg string) error {
	return contract.NewError(http.StatusNotFound, contract.CodeNotFound, msg)
}

// APIKeyPrefix is the public prefix of a well-formed API key (shown in
// listings, so harmless in a record), or "" for anything else.
func APIKeyPrefix(key string) string {
	p, _ := parseAPIKey(key)
	return p
}
