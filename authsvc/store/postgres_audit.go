package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func (p *Postgres) PutPendingTOTP(ctx context.Context, t TOTP, ev Event) error {
	if !validUUID(t.UserID) {
		return fmt.Errorf("put pending totp: %w", ErrNotFound)
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		// Replaces a pending enrolment; a confirmed one stays (no row changes).
		tag, err := tx.Exec(ctx, `INSERT INTO totp_secrets (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET sealed_secret = EXCLUDED.sealed_secret, created_at = EXCLUDED.created_at
			WHERE totp_secrets.confirmed_at IS NULL`, t.UserID, t.SealedSecret, micro(t.CreatedAt))
		if err == nil && tag.RowsAffected() == 0 {
			return ErrConflict
		}
		return err
	})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("put pending totp: %w", ErrConflict)
	}
	return wrap("put pending totp", err)
}

func (p *Postgres) GetTOTP(ctx context.Context, userID string) (TOTP, error) {
	if !validUUID(userID) {
		return TOTP{}, fmt.Errorf("get totp: %w", ErrNotFound)
	}
	t := TOTP{UserID: userID}
	var confirmed *time.Time
	err := p.pool.QueryRow(ctx, `SELECT sealed_secret, created_at, confirmed_at FROM totp_secrets WHERE user_id = $1`, userID).
		Scan(&t.SealedSecret, &t.CreatedAt, &confirmed)
	t.CreatedAt, t.ConfirmedAt = t.CreatedAt.UTC(), fromNull(confirmed)
	return t, wrap("get totp", err)
}

func (p *Postgres) ConfirmTOTP(ctx context.Context, userID string, recoveryHashes [][]byte, now time.Time, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("confirm totp: %w", ErrNotFound)
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE totp_secrets SET confirmed_at = $2 WHERE user_id = $1 AND confirmed_at IS NULL`, userID, micro(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, hash) SELECT $1, h FROM unnest($2::bytea[]) AS h`, userID, recoveryHashes)
		return err
	})
	return wrap("confirm totp", err)
}

func (p *Postgres) DeleteTOTP(ctx context.Context, userID string, ev Event) error {
	if !validUUID(userID) {
		return fmt.Errorf("delete totp: %w", ErrNotFound)
	}
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		_, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	return wrap("delete totp", err)
}

func (p *Postgres) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time, ev Event) (int, error) {
	if !validUUID(userID) {
		return 0, fmt.Errorf("use recovery code: %w", ErrNotFound)
	}
	var left int
	err := p.inTx(ctx, ev, func(tx pgx.Tx) error {
		// The row lock orders parallel uses of one code; the later ones
		// re-check used_at IS NULL and change nothing.
		tag, err := tx.Exec(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND hash = $2 AND used_at IS NULL`,
			userID, hash, micro(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&left)
	})
	return left, wrap("use recovery code", err)
}

func (p *Postgres) AppendAudit(ctx context.Context, ev Event) error {
	return wrap("append audit", p.execAudited(ctx, ev, ""))
}

const auditColumns = `seq, at, type, actor_id, company_id, subject_id, ip, user_agent, request_id, details, prev_hash, hash`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.Seq, &e.Time, &e.Type, &e.ActorID, &e.CompanyID, &e.SubjectID, &e.IP, &e.UserAgent, &e.RequestID,
		&e.Details, &e.PrevHash, &e.Hash)
	e.Time = e.Time.UTC()
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	return e, err
}

func (p *Postgres) ListAudit(ctx context.Context, f AuditFilter, pg Page) ([]Event, int64, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.CompanyID != "" {
		conds = append(conds, "company_id = "+arg(f.CompanyID))
	}
	if f.UserID != "" {
		a := arg(f.UserID)
		conds = append(conds, "(actor_id = "+a+" OR subject_id = "+a+")")
	}
	if len(f.Types) > 0 {
		conds = append(conds, "type = ANY("+arg(f.Types)+"::text[])")
	}
	if !f.Since.IsZero() {
		conds = append(conds, "at >= "+arg(micro(f.Since)))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "at < "+arg(micro(f.Until)))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	var total int64
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events`+where, args...).Scan(&total); err != nil {
		return nil, 0, wrap("list audit", err)
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events` + where + ` ORDER BY at DESC, seq DESC LIMIT ` + arg(pg.Limit) + ` OFFSET ` + arg(pg.Offset)
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, wrap("list audit", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
	if out == nil {
		out = []Event{}
	}
	return out, total, wrap("list audit", err)
}

// verifyBatch is how many records VerifyAudit reads per query: memory stays
// bounded whatever the length of the trail.
const verifyBatch = 1000

// VerifyAudit reads the trail in sequence order, in batches, inside one
// repeatable-read transaction so that it sees one snapshot of records and head.
func (p *Postgres) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	var check AuditCheck
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		heads := make([]struct {
			seq  int64
			hash []byte
		}, auditStripes)
		for i := range heads { // a deleted head row: compare with an empty chain
			heads[i].seq, heads[i].hash = int64(i)+1-auditStripes, GenesisHash
		}
		rows, err := tx.Query(ctx, `SELECT stripe, seq, hash FROM audit_head`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var stripe int64
			var seq int64
			var hash []byte
			if err := rows.Scan(&stripe, &seq, &hash); err != nil {
				return err
			}
			if stripe >= 0 && stripe < auditStripes {
				heads[stripe].seq, heads[stripe].hash = seq, hash
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		chains := make([]*chainVerifier, auditStripes)
		for i := range chains {
			chains[i] = newStripeVerifier(int64(i), auditStripes)
		}
		// Records are read in seq order across chains, so the first problem
		// found is the earliest one.
		after := int64(-1 << 62)
		var bad *AuditCheck
	read:
		for {
			rows, err := tx.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, verifyBatch)
			if err != nil {
				return err
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
			if err != nil {
				return err
			}
			for _, e := range batch {
				stripe := ((e.Seq-1)%auditStripes + auditStripes) % auditStripes
				if !chains[stripe].next(e) {
					c := chains[stripe].finish(heads[stripe].seq, heads[stripe].hash)
					bad = &c
					break read
				}
				after = e.Seq
			}
			if len(batch) < verifyBatch {
				break
			}
		}
		var total int64
		for _, c := range chains {
			total += c.records
		}
		if bad != nil {
			bad.Records = total
			check = *bad
			return nil
		}
		for i, c := range chains {
			if r := c.finish(heads[i].seq, heads[i].hash); !r.OK {
				r.Records = total
				check = r
				return nil
			}
		}
		check = AuditCheck{OK: true, Records: total, HeadHash: bytes.Clone(lastHead(chains))}
		return nil
	})
	return check, wrap("verify audit", err)
}

// lastHead is the hash of the record with the highest seq of all chains.
func lastHead(chains []*chainVerifier) []byte {
	var seq int64 = -1 << 62
	var hash []byte
	for _, c := range chains {
		if c.records > 0 && c.prevSeq > seq {
			seq, hash = c.prevSeq, c.prevHash
		}
	}
	if hash == nil {
		return GenesisHash
	}
	return hash
}
