package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The audited writes of the hot paths (switch-company, refresh, starting a
// session, audit-only records) are pipelined: BEGIN, the change and — when
// the event's chain is known beforehand — the lock of that chain's head go
// to the server in one round trip; the event, sealed after the head, and
// COMMIT in a second. It is the same transaction inTx runs (the change and
// its record are committed together or not at all; appends to a chain are
// ordered by the lock on its head), in two round trips instead of five, or
// three when the chain is known only once the change is made (refresh: the
// chain is the session's, found from the token).

// lockHeadSQL locks the head of chain $1 and reads it.
const lockHeadSQL = `SELECT seq, hash FROM audit_head WHERE stripe = $1 FOR UPDATE`

// appendSQL stores a sealed event and makes it the head of its chain ($13).
const appendSQL = `WITH ins AS (
		INSERT INTO audit_events (seq, at, type, actor_id, company_id, subject_id, ip, user_agent, request_id, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12))
	UPDATE audit_head SET seq = $1, hash = $12 WHERE stripe = $13`

// queueAppend queues the append of ev after the head (seq, prev) of its chain.
func queueAppend(b *pgx.Batch, ev Event, stripe, seq int64, prev []byte) {
	e := ev.seal(seq+auditStripes, prev)
	b.Queue(appendSQL, e.Seq, e.Time, e.Type, e.ActorID, e.CompanyID, e.SubjectID, e.IP, e.UserAgent, e.RequestID,
		e.Details, e.PrevHash, e.Hash, stripe)
}

// auditHead is the head of a chain as read (and locked) by lockHeadSQL.
type auditHead struct {
	stripe int64
	seq    int64
	hash   []byte
}

func (h *auditHead) scan(row pgx.Row) error {
	if err := row.Scan(&h.seq, &h.hash); err != nil {
		return fmt.Errorf("audit: read head: %w", err)
	}
	return nil
}

// newTxBatch is a batch that begins a transaction: queue the transaction's
// first statements on it and send it with sendTx.
func newTxBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("begin")
	return b
}

// sendTx acquires a connection and sends b (from newTxBatch) in one round
// trip. The caller reads the results of its queries after the BEGIN from br,
// closes br, and ends with commitAudit; endTx releases the connection,
// rolling back a transaction that was not committed.
func (p *Postgres) sendTx(ctx context.Context, b *pgx.Batch) (*pgxpool.Conn, pgx.BatchResults, error) {
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil { // BEGIN
		_ = br.Close()
		endTx(ctx, c)
		return nil, nil, err
	}
	return c, br, nil
}

// endTx rolls back c's transaction if it is still open and releases c. A
// connection that can't be rolled back (ctx done, connection broken) is not
// idle: the pool closes it instead of reusing it.
func endTx(ctx context.Context, c *pgxpool.Conn) {
	if pc := c.Conn().PgConn(); !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() != 'I' {
		_, _ = c.Exec(ctx, "rollback")
	}
	c.Release()
}

// commitAudit appends ev after head, which this transaction holds locked,
// and commits, in one round trip. If the append fails, the server skips the
// COMMIT and the transaction stays open (for endTx to roll back).
func commitAudit(ctx context.Context, c *pgxpool.Conn, ev Event, head auditHead) error {
	b := &pgx.Batch{}
	queueAppend(b, ev, head.stripe, head.seq, head.hash)
	b.Queue("commit")
	br := c.SendBatch(ctx, b)
	_, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return fmt.Errorf("audit: append: %w", err)
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("commit: %s", tag.String())
	}
	return err
}

// lockAndCommitAudit locks the head of ev's chain, then appends ev and
// commits: for a change whose event is known only once the change is made.
func lockAndCommitAudit(ctx context.Context, c *pgxpool.Conn, ev Event) error {
	head := auditHead{stripe: auditStripe(ev)}
	if err := head.scan(c.QueryRow(ctx, lockHeadSQL, head.stripe)); err != nil {
		return err
	}
	return commitAudit(ctx, c, ev, head)
}

// execAudited runs one statement that changes state (none when sql is
// empty) and appends ev in one transaction, in two round trips.
func (p *Postgres) execAudited(ctx context.Context, ev Event, sql string, args ...any) error {
	head := auditHead{stripe: auditStripe(ev)}
	b := newTxBatch()
	if sql != "" {
		b.Queue(sql, args...)
	}
	b.Queue(lockHeadSQL, head.stripe)
	c, br, err := p.sendTx(ctx, b)
	if err != nil {
		return err
	}
	defer endTx(ctx, c)
	if sql != "" {
		_, err = br.Exec()
	}
	if err == nil {
		err = head.scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return commitAudit(ctx, c, ev, head)
}
