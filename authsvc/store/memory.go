package store

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is the in-process Store of the embedded default. One mutex guards
// everything: operations are short and this keeps every compound step
// (rotation, revocation of a family) atomic, as the Postgres statements are.
// The domains' methods are in memory_<domain>.go; a helper whose name ends
// in Locked expects m.mu held.
type Memory struct {
	mu          sync.Mutex
	companies   map[string]Company
	cells       map[string]string // company id -> cell, when not ''
	users       map[string]User
	emails      map[string]string                // email -> user id
	skeletons   map[string]string                // email skeleton -> user id
	memberships map[string]map[string]Membership // user id -> company id -> membership
	sessions    map[string]Session
	refresh     map[string]*memRefresh // string(hash) -> token
	apiKeys     map[string]APIKey
	prefixes    map[string]string // prefix -> key id
	signing     map[KeyPurpose]map[string]SigningKey
	totp        map[string]TOTP
	recovery    map[string]map[string]bool // user id -> string(hash) -> used
	audit       []Event
	headSeq     int64
	headHash    []byte
	outbox      []Revocation // undelivered revocations, oldest first
	outboxSeq   int64
	events      []int64        // seqs of audit records not yet published as events, oldest first
	eventsHeld  map[int64]bool // seqs a relay is publishing
	eventsLost  int64          // seqs dropped from a full events outbox
	appends     appendNotifier

	// the identity features' parts (sso.go, webauthn.go, factors.go, devices.go)
	ssoMem      memSSO
	webauthnMem memWebAuthn
	factorMem   memFactors
	deviceMem   memDevices

	auditCut *AuditCheckpoint // where the trail starts after a retention cut; nil: at record 1
}

type memRefresh struct {
	sessionID string
	expiresAt time.Time
	used      bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		companies:   map[string]Company{},
		users:       map[string]User{},
		emails:      map[string]string{},
		skeletons:   map[string]string{},
		memberships: map[string]map[string]Membership{},
		sessions:    map[string]Session{},
		refresh:     map[string]*memRefresh{},
		apiKeys:     map[string]APIKey{},
		prefixes:    map[string]string{},
		signing:     map[KeyPurpose]map[string]SigningKey{KeyAccess: {}, KeyAssertion: {}},
		totp:        map[string]TOTP{},
		recovery:    map[string]map[string]bool{},
		headHash:    GenesisHash,
	}
}

var _ Store = (*Memory)(nil)

// appendLocked appends ev to the trail.
func (m *Memory) appendLocked(ev Event) {
	ev = ev.seal(m.headSeq+1, m.headHash)
	m.audit = append(m.audit, ev)
	m.headSeq, m.headHash = ev.Seq, ev.Hash
	m.enqueueEventLocked(ev.Seq)
}

// revokeLocked revokes the active sessions in sc at now for reason, records
// each in the outbox, and returns their ids, sorted (never nil).
func (m *Memory) revokeLocked(sc sessionScope, now time.Time, reason string) []string {
	ids := []string{}
	for id, s := range m.sessions {
		if sc.match(s) {
			m.revokeSessionLocked(s, now, reason)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// revokeSessionLocked revokes s at now for reason and records it in the outbox.
func (m *Memory) revokeSessionLocked(s Session, now time.Time, reason string) Session {
	s.RevokedAt, s.RevokeReason = micro(now), reason
	m.sessions[s.ID] = s
	m.outboxLocked(RevokedSession, s.ID, now)
	return s
}

// pageOf is the slice of all that p selects (a copy).
func pageOf[T any](all []T, p Page) []T {
	if p.Offset >= len(all) || p.Limit <= 0 {
		return []T{}
	}
	end := min(len(all), p.Offset+p.Limit)
	return slices.Clone(all[p.Offset:end])
}
