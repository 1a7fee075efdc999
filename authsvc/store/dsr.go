package store

import (
	"context"
	"maps"
	"strconv"
	"time"
)

// EventUserErased records the erasure of a person (SubjectID: their
// pseudonym; Details: how many sessions were revoked and audit records
// pseudonymised).
const EventUserErased = "admin.user.erased"

// ErasureStore carries out a data-subject erasure.
type ErasureStore interface {
	// EraseUser removes a user and what is stored about them: every
	// session is revoked (and so recorded in the revocation outbox, for
	// the edges) and deleted with its refresh tokens; memberships, TOTP
	// and recovery codes, email and SMS factors, passkeys, trusted
	// devices and login history go with the account; API keys they made
	// name the pseudonym instead. The audit records about them — done by
	// them, to them, or naming their email — are pseudonymised (see
	// Event.Pseudonymise) under key, and ev is appended, in the same
	// transaction. ErrNotFound for an unknown user.
	EraseUser(ctx context.Context, userID, pseudonym string, now time.Time, key AuditKey, ev Event) (Erasure, error)
}

// Erasure is what EraseUser did.
type Erasure struct {
	RevokedSessions []string
	AuditRecords    int64
}

// about reports whether e is a record about the person (id, email).
func about(e Event, id, email string) bool {
	return e.ActorID == id || e.SubjectID == id || (email != "" && e.Details["email"] == email)
}

// erasureDetails adds what an erasure did to its record's details.
func erasureDetails(d map[string]string, e Erasure) map[string]string {
	d = maps.Clone(d)
	if d == nil {
		d = map[string]string{}
	}
	d["sessions_revoked"] = strconv.Itoa(len(e.RevokedSessions))
	d["audit_records"] = strconv.FormatInt(e.AuditRecords, 10)
	return d
}
