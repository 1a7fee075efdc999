package store

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

func (p *Postgres) AppendAudit(ctx context.Context, ev Event) error {
	return wrap("append audit", p.execAudited(ctx, scope{}, ev, ""))
}

const auditColumns = `seq, at, type, actor_id, company_id, subject_id, ip, user_agent, request_id, details, prev_hash, hash, erasure_sig`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.Seq, &e.Time, &e.Type, &e.ActorID, &e.CompanyID, &e.SubjectID, &e.IP, &e.UserAgent, &e.RequestID,
		&e.Details, &e.PrevHash, &e.Hash, &e.Erasure)
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
	// A company's trail is the company's; the whole trail (no company
	// named) is the platform admin's.
	sc := platformScope("admin: list the audit trail")
	if f.CompanyID != "" {
		sc = companyScope(f.CompanyID)
	}
	var total int64
	var out []Event
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM audit_events`+where, args...)
	q := `SELECT ` + auditColumns + ` FROM audit_events` + where + ` ORDER BY at DESC, seq DESC LIMIT ` + arg(pg.Limit) + ` OFFSET ` + arg(pg.Offset)
	b.Queue(q, args...)
	err := p.inTx(ctx, txSpec{scope: sc, first: b, oneTrip: true}, func(t *tx) error {
		if err := t.Row().Scan(&total); err != nil {
			return err
		}
		var err error
		out, err = collect(scanEvent)(t.Rows())
		return err
	})
	if err != nil {
		return nil, 0, wrap("list audit", err)
	}
	return out, total, nil
}

// verifyBatch is how many records VerifyAudit reads per query: memory stays
// bounded whatever the length of the trail.
const verifyBatch = 1000

func (p *Postgres) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	return p.VerifyAuditWith(ctx, AuditKey{})
}

// VerifyAuditWith reads the trail in sequence order, in batches, inside one
// repeatable-read transaction so that it sees one snapshot of records,
// checkpoints and heads. A chain cut by retention starts at its checkpoint,
// whose signature is checked first.
func (p *Postgres) VerifyAuditWith(ctx context.Context, key AuditKey) (AuditCheck, error) {
	var check AuditCheck
	err := p.inTx(ctx, txSpec{begin: "begin isolation level repeatable read read only",
		scope: platformScope("verify the audit trail")}, func(t *tx) error {
		heads := make([]struct {
			seq  int64
			hash []byte
		}, auditStripes)
		for i := range heads { // a deleted head row: compare with an empty chain
			heads[i].seq, heads[i].hash = int64(i)+1-auditStripes, GenesisHash
		}
		rows, err := t.Query(`SELECT stripe, seq, hash FROM audit_head`)
		if err != nil {
			return err
		}
		defer rows.Close()
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
			chains[i].key = key
		}
		cps, err := collect(scanCheckpoint)(t.Query(`SELECT ` + checkpointColumns + ` FROM audit_checkpoints WHERE signature IS NOT NULL ORDER BY stripe`))
		if err != nil {
			return err
		}
		after := int64(-1 << 62)
		for _, cp := range cps {
			if cp.Stripe < 0 || cp.Stripe >= auditStripes {
				continue
			}
			if problem := cp.check(key); problem != "" {
				check = AuditCheck{BadSeq: cp.Seq, Problem: problem}
				return nil
			}
			chains[cp.Stripe].startAt(cp)
		}
		// Records are read in seq order across chains, so the first problem
		// found is the earliest one.
		var bad *AuditCheck
	read:
		for {
			batch, err := collect(scanEvent)(t.Query(`SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, verifyBatch))
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
		check = AuditCheck{OK: true, Records: total, HeadHash: bytes.Clone(lastHead(chains)), Checkpoints: len(cps)}
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
