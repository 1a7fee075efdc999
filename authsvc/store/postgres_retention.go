package store

import (
	"bytes"
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The methods of this file are platform operations: they read and delete
// rows of every company, in platform transactions (postgres_scope.go).

// The purges delete at most $2 rows whose time ran out before $1,
// skipping rows another purger (or a request) holds.
const (
	purgeSessionsSQL = `WITH doomed AS (
		SELECT id FROM sessions WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
	DELETE FROM sessions s USING doomed d WHERE s.id = d.id`
	purgeRefreshSQL = `WITH doomed AS (
		SELECT hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
	DELETE FROM refresh_tokens r USING doomed d WHERE r.hash = d.hash`
	purgeDevicesSQL = `WITH doomed AS (
		SELECT id FROM trusted_devices WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
	DELETE FROM trusted_devices t USING doomed d WHERE t.id = d.id`
)

// PurgeExpired is a platform operation (every company's rows).
func (p *Postgres) PurgeExpired(ctx context.Context, before time.Time, limit int) (PurgeCounts, error) {
	var c PurgeCounts
	before = micro(before)
	for _, step := range []struct {
		sql string
		n   *int64
	}{{purgeSessionsSQL, &c.Sessions}, {purgeRefreshSQL, &c.RefreshTokens}, {purgeDevicesSQL, &c.TrustedDevices}} {
		err := p.inTx(ctx, txSpec{scope: platformScope("background: retention: purge expired")}, func(t *tx) error {
			tag, err := t.Exec(step.sql, before, limit)
			*step.n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return c, wrap("purge expired", err)
		}
	}
	return c, nil
}

const checkpointColumns = `stripe, seq, hash, cut_at, removed, key_id, signature`

func scanCheckpoint(row pgx.Row) (AuditCheckpoint, error) {
	var c AuditCheckpoint
	var cut *time.Time
	err := row.Scan(&c.Stripe, &c.Seq, &c.Hash, &cut, &c.Removed, &c.KeyID, &c.Signature)
	c.CutAt = fromNull(cut)
	return c, err
}

// AuditCheckpoints is a platform operation (the whole trail).
func (p *Postgres) AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	var out []AuditCheckpoint
	err := p.inTx(ctx, txSpec{scope: platformScope("audit: checkpoints")}, func(t *tx) error {
		var err error
		out, err = collect(scanCheckpoint)(t.Query(`SELECT ` + checkpointColumns + ` FROM audit_checkpoints WHERE signature IS NOT NULL ORDER BY stripe`))
		return err
	})
	return out, wrap("audit checkpoints", err)
}

// PruneAudit is a platform operation (the whole trail). Each chain is cut
// in a transaction of its own that locks the chain's checkpoint row: two
// instances pruning at once take turns per chain, and the second finds
// the records gone. Appenders are not held up: they lock the head, not
// the checkpoint, and only old records are removed.
func (p *Postgres) PruneAudit(ctx context.Context, before time.Time, limit int, key AuditKey, now time.Time) (int64, error) {
	if key.IsZero() {
		return 0, wrap("prune audit", errNoAuditKey)
	}
	var total int64
	for stripe := int64(0); stripe < auditStripes; stripe++ {
		var n int64
		err := p.inTx(ctx, txSpec{scope: platformScope("background: retention: prune audit")}, func(t *tx) error {
			cp, err := scanCheckpoint(t.QueryRow(`SELECT `+checkpointColumns+` FROM audit_checkpoints WHERE stripe = $1 FOR UPDATE`, stripe))
			if err != nil {
				return err
			}
			var pending *int64 // the oldest record the events relay has not published
			if err := t.QueryRow(`SELECT min(audit_seq) FROM event_outbox`).Scan(&pending); err != nil {
				return err
			}
			rows, err := t.Query(`SELECT seq, hash, at FROM audit_events WHERE seq > $1 AND (seq - $2) % $3 = 0 ORDER BY seq LIMIT $4`,
				cp.Seq, stripe+1, int64(auditStripes), limit)
			if err != nil {
				return err
			}
			type rec struct {
				seq  int64
				hash []byte
				at   time.Time
			}
			recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rec, error) {
				var x rec
				return x, r.Scan(&x.seq, &x.hash, &x.at)
			})
			if err != nil {
				return err
			}
			cut := -1
			for i, r := range recs {
				if !r.at.Before(before) || (pending != nil && r.seq >= *pending) {
					break
				}
				cut = i
			}
			if cut < 0 {
				return nil
			}
			last := recs[cut]
			tag, err := t.Exec(`DELETE FROM audit_events WHERE seq > $1 AND seq <= $2 AND (seq - $3) % $4 = 0`, cp.Seq, last.seq, stripe+1, int64(auditStripes))
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			next := AuditCheckpoint{Stripe: stripe, Seq: last.seq, Hash: bytes.Clone(last.hash), CutAt: now, Removed: cp.Removed + n}.sign(key)
			_, err = t.Exec(`UPDATE audit_checkpoints SET seq = $2, hash = $3, cut_at = $4, removed = $5, key_id = $6, signature = $7 WHERE stripe = $1`,
				next.Stripe, next.Seq, next.Hash, next.CutAt, next.Removed, next.KeyID, next.Signature)
			return err
		})
		if err != nil {
			return total, wrap("prune audit", err)
		}
		total += n
	}
	return total, nil
}
