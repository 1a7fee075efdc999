package store

import (
	"context"
	"errors"
)

// claimEventsSQL claims the oldest outbox rows no other relay holds, with
// their audit records.
const claimEventsSQL = `SELECT ` + auditColumns + ` FROM event_outbox o JOIN audit_events e ON e.seq = o.audit_seq
	ORDER BY o.audit_seq LIMIT $1 FOR UPDATE OF o SKIP LOCKED`

// errNonePublished rolls back a relay transaction that removes nothing.
var errNonePublished = errors.New("none published")

func (p *Postgres) RelayEvents(ctx context.Context, limit int, publish func([]Event) (int, error)) (claimed, published int, err error) {
	var pubErr error
	var n int
	err = p.inTx(ctx, txSpec{scope: platformScope("background: relay events")}, func(t *tx) error {
		evs, err := collect(scanEvent)(t.Query(claimEventsSQL, limit))
		if err != nil {
			return err
		}
		if claimed = len(evs); claimed == 0 {
			return errNonePublished
		}
		n, pubErr = publish(evs)
		if n = max(0, min(n, len(evs))); n == 0 {
			return errNonePublished // the locks go with the rollback
		}
		seqs := make([]int64, n)
		for i := range n {
			seqs[i] = evs[i].Seq
		}
		_, err = t.Exec(`DELETE FROM event_outbox WHERE audit_seq = ANY($1)`, seqs)
		return err
	})
	switch {
	case errors.Is(err, errNonePublished):
		return claimed, 0, pubErr
	case err != nil: // the rows stay: published again later (same ids)
		return claimed, 0, wrap("relay events", err)
	}
	return claimed, n, pubErr
}

func (p *Postgres) EventBacklog(ctx context.Context) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM event_outbox`).Scan(&n)
	return n, wrap("event backlog", err)
}

func (p *Postgres) NotifyAppends(ctx context.Context, fn func()) { p.appends.subscribe(ctx, fn) }
