package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// eraseAuditBatch is how many audit records EraseUser rewrites per round trip.
const eraseAuditBatch = 500

// EraseUser is a platform operation: the person's rows of every company,
// and audit records of every company.
func (p *Postgres) EraseUser(ctx context.Context, userID, pseudonym string, now time.Time, key AuditKey, ev Event) (Erasure, error) {
	var out Erasure
	if key.IsZero() {
		return out, wrap("erase user", errNoAuditKey)
	}
	if !validUUID(userID) {
		return out, wrap("erase user", ErrNotFound)
	}
	err := p.inTx(ctx, txSpec{scope: platformScope("admin: erase user"), ev: &ev}, func(t *tx) error {
		var email string
		if err := t.QueryRow(`SELECT email FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&email); err != nil {
			return err
		}
		ids, err := t.revokeSessions(sessionScope{userID: userID}, now, "erased")
		if err != nil {
			return err
		}
		out.RevokedSessions = ids
		if _, err := t.Exec(`UPDATE api_keys SET created_by = $2 WHERE created_by = $1`, userID, pseudonym); err != nil {
			return err
		}
		// Everything keyed by the user goes with it (ON DELETE CASCADE).
		if _, err := t.Exec(`DELETE FROM users WHERE id = $1`, userID); err != nil {
			return err
		}
		// The records about them, in seq order, a batch at a time. The email
		// is matched without an index: erasures are rare.
		after := int64(-1 << 62)
		for {
			evs, err := collect(scanEvent)(t.Query(`SELECT `+auditColumns+` FROM audit_events
				WHERE seq > $1 AND (actor_id = $2 OR subject_id = $2 OR details->>'email' = $3) ORDER BY seq LIMIT $4`,
				after, userID, email, eraseAuditBatch))
			if err != nil {
				return err
			}
			b := &pgx.Batch{}
			for _, e := range evs {
				after = e.Seq
				e = e.Pseudonymise(userID, email, pseudonym, key)
				b.Queue(`UPDATE audit_events SET actor_id = $2, subject_id = $3, ip = $4, user_agent = $5, details = $6, erasure_sig = $7 WHERE seq = $1`,
					e.Seq, e.ActorID, e.SubjectID, e.IP, e.UserAgent, e.Details, e.Erasure)
			}
			if len(evs) > 0 {
				if err := t.conn.SendBatch(t.ctx, b).Close(); err != nil {
					return err
				}
				out.AuditRecords += int64(len(evs))
			}
			if len(evs) < eraseAuditBatch {
				ev.Details = erasureDetails(ev.Details, out)
				return nil
			}
		}
	})
	return out, wrap("erase user", err)
}
