package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

func (p *Postgres) PendingRevocations(ctx context.Context, limit int) ([]Revocation, error) {
	out, err := collect(func(row pgx.Row) (Revocation, error) {
		var r Revocation
		var kind string
		err := row.Scan(&r.Seq, &kind, &r.SubjectID, &r.At)
		r.Kind, r.At = RevocationKind(kind), r.At.UTC()
		return r, err
	})(p.pool.Query(ctx, `SELECT seq, kind, subject_id, revoked_at FROM revocation_outbox ORDER BY seq LIMIT $1`, limit))
	if err != nil {
		return nil, wrap("pending revocations", err)
	}
	return out, nil
}

func (p *Postgres) DeleteRevocations(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := p.pool.Exec(ctx, `DELETE FROM revocation_outbox WHERE seq = ANY($1)`, seqs)
	return wrap("delete revocations", err)
}

func (p *Postgres) EnqueueRevocations(ctx context.Context, rs []Revocation) error {
	if len(rs) == 0 {
		return nil
	}
	kinds, subjects, ats := make([]string, len(rs)), make([]string, len(rs)), make([]any, len(rs))
	for i, r := range rs {
		if !r.Kind.valid() {
			return fmt.Errorf("enqueue revocations: unknown kind %q", r.Kind)
		}
		kinds[i], subjects[i], ats[i] = string(r.Kind), r.SubjectID, micro(r.At)
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO revocation_outbox (kind, subject_id, revoked_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])`, kinds, subjects, ats)
	return wrap("enqueue revocations", err)
}
