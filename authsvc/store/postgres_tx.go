package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Every transaction of the Postgres store runs through inTx. A transaction
// that changes state appends its audit event before COMMIT, after the head
// of the event's chain, which it locks: the change and its record are
// committed together or not at all, and the appends to one chain are
// ordered by that lock. The head is always a transaction's last lock (rows
// first, then the head), so two transactions never wait for each other's
// locks in opposite orders.
//
// The statements are pipelined: BEGIN goes to the server with the
// statements queued beforehand and — when the event's chain is known
// beforehand and nothing else runs — the lock of its head; the sealed event
// and COMMIT go in the last round trip. The hot paths (refresh, switch,
// starting a session, audit-only records) take two or three round trips.
// The transaction's scope (row-level security: postgres_scope.go) is set
// right after BEGIN, in the same first round trip; a read with oneTrip
// queues its COMMIT there too, so that it takes one round trip in all.

// txSpec describes a transaction for inTx.
type txSpec struct {
	begin string     // the BEGIN statement; empty: "begin" (read committed)
	scope scope      // whose rows the transaction sees (postgres_scope.go); zero: no company's
	first *pgx.Batch // statements sent with BEGIN; fn reads their results in order
	ev    *Event     // appended before COMMIT, as fn leaves it; nil: no audit (a read)
	// lockFirst locks ev's chain head in the first round trip, after the
	// first statements: ev's chain is known beforehand (the stripe is taken
	// from ev as given), and fn only reads results, running no statement.
	lockFirst bool
	// oneTrip commits in the first round trip, after the first statements: a
	// read (ev nil) whose fn only reads results, running no statement.
	oneTrip bool
}

// pgConn is a connection inTx runs on: a pool's, or the migrator's own.
type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// tx is a transaction in progress, as inTx hands it to its function.
type tx struct {
	ctx    context.Context
	conn   pgConn
	br     pgx.BatchResults // the first round trip's results; nil once closed
	queued int              // how many results of first there are
	read   int              // how many of them were read
	sealed bool             // the head is locked already: no further statements
}

// inTx runs fn in one transaction on one connection (see the comment at the
// top of this file). fn returning an error rolls the transaction back and
// inTx returns the error, unwrapped: the caller wraps it with its operation.
func (p *Postgres) inTx(ctx context.Context, spec txSpec, fn func(t *tx) error) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer endTx(ctx, conn)
	if spec.scope.platform != "" {
		p.observePlatform(ctx, spec.scope.platform)
	}
	if err := runTx(ctx, conn, spec, fn); err != nil {
		return err
	}
	if spec.ev != nil {
		p.appends.notify()
	}
	return nil
}

// runTx is inTx on conn; the caller rolls back a transaction it leaves open.
func runTx(ctx context.Context, conn pgConn, spec txSpec, fn func(t *tx) error) error {
	b := spec.first
	if b == nil {
		b = &pgx.Batch{}
	}
	begin := spec.begin
	if begin == "" {
		begin = "begin"
	}
	if spec.oneTrip && (spec.ev != nil || spec.lockFirst) {
		return errors.New("tx: one round trip is for reads")
	}
	// BEGIN is queued first, then the scope: pgx.Batch has no way to
	// prepend, so the first statements are copied behind them.
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(b.QueuedQueries)+4)}
	all.Queue(begin)
	scoped := spec.scope.queue(all)
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	var head auditHead
	if spec.ev != nil && spec.lockFirst {
		head.stripe = auditStripe(*spec.ev)
		all.Queue(lockHeadSQL, head.stripe)
	}
	if spec.oneTrip {
		all.Queue("commit")
	}
	t := &tx{ctx: ctx, conn: conn, br: conn.SendBatch(ctx, all), queued: len(b.QueuedQueries),
		sealed: (spec.ev != nil && spec.lockFirst) || spec.oneTrip}
	if _, err := t.br.Exec(); err != nil { // BEGIN
		_ = t.close()
		return err
	}
	for range scoped {
		if _, err := t.br.Exec(); err != nil {
			_ = t.close()
			return fmt.Errorf("set the transaction's scope: %w", err)
		}
	}
	if err := fn(t); err != nil {
		_ = t.close()
		return err
	}
	var err error
	switch {
	case spec.oneTrip:
		if err := t.drain(); err != nil {
			return err
		}
		tag, err := t.br.Exec()
		if cerr := t.close(); err == nil {
			err = cerr
		}
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("commit: %s", tag.String())
		}
		return err
	case spec.ev == nil:
		if err := t.close(); err != nil {
			return err
		}
		tag, err := conn.Exec(ctx, "commit")
		if err == nil && tag.String() != "COMMIT" { // the server rolled back
			err = fmt.Errorf("commit: %s", tag.String())
		}
		return err
	case spec.lockFirst:
		if err := t.drain(); err != nil {
			return err
		}
		err = head.scan(t.br.QueryRow())
		if cerr := t.close(); err == nil {
			err = cerr
		}
	default:
		if err := t.close(); err != nil {
			return err
		}
		head.stripe = auditStripe(*spec.ev)
		err = head.scan(conn.QueryRow(ctx, lockHeadSQL, head.stripe))
	}
	if err != nil {
		return err
	}
	return commitAudit(ctx, conn, *spec.ev, head)
}

// drain reads the results of the first statements fn left unread.
func (t *tx) drain() error {
	for ; t.read < t.queued; t.read++ {
		if _, err := t.br.Exec(); err != nil {
			_ = t.close()
			return err
		}
	}
	return nil
}

// close reads and discards the first round trip's remaining results,
// returning the first error among them.
func (t *tx) close() error {
	if t.br == nil {
		return nil
	}
	err := t.br.Close()
	t.br = nil
	return err
}

// Row is the result of the next statement of the first round trip, as a row.
func (t *tx) Row() pgx.Row {
	if t.br == nil || t.read >= t.queued {
		return errRow{errors.New("tx: no queued statement left")}
	}
	t.read++
	return t.br.QueryRow()
}

// Rows is the result of the next statement of the first round trip, as
// rows, which the caller reads to the end (or closes) before the next.
func (t *tx) Rows() (pgx.Rows, error) {
	if t.br == nil || t.read >= t.queued {
		return nil, errors.New("tx: no queued statement left")
	}
	t.read++
	return t.br.Query()
}

// Result is the result of the next statement of the first round trip.
func (t *tx) Result() (pgconn.CommandTag, error) {
	if t.br == nil || t.read >= t.queued {
		return pgconn.CommandTag{}, errors.New("tx: no queued statement left")
	}
	t.read++
	return t.br.Exec()
}

// ready ends the first round trip before a statement of fn's own.
func (t *tx) ready() error {
	if t.sealed {
		return errors.New("tx: a statement after the first round trip's last (the audit head's lock, or the commit)")
	}
	return t.close()
}

// Exec runs a statement in the transaction.
func (t *tx) Exec(sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.ready(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.conn.Exec(t.ctx, sql, args...)
}

// QueryRow runs a query of one row in the transaction.
func (t *tx) QueryRow(sql string, args ...any) pgx.Row {
	if err := t.ready(); err != nil {
		return errRow{err}
	}
	return t.conn.QueryRow(t.ctx, sql, args...)
}

// Query runs a query in the transaction.
func (t *tx) Query(sql string, args ...any) (pgx.Rows, error) {
	if err := t.ready(); err != nil {
		return nil, err
	}
	return t.conn.Query(t.ctx, sql, args...)
}

// errRow is a row that fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// endTx rolls back c's transaction if it is still open and releases c. A
// connection that can't be rolled back (ctx done, connection broken) is not
// idle: the pool closes it instead of reusing it.
func endTx(ctx context.Context, c *pgxpool.Conn) {
	if pc := c.Conn().PgConn(); !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() != 'I' {
		_, _ = c.Exec(ctx, "rollback")
	}
	c.Release()
}

// auditStripes is the number of hash chains the trail is kept in (see
// migration 0002): appends to different stripes do not wait for each other.
const auditStripes = 8

// auditStripe picks an event's chain: the events about one subject (a
// session, a key, a user) stay in one chain, in order.
func auditStripe(ev Event) int64 {
	key := ev.SubjectID
	if key == "" {
		key = ev.ActorID
	}
	if key == "" {
		key = ev.RequestID + ev.IP
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum32() % auditStripes)
}

// lockHeadSQL locks the head of chain $1 and reads it.
const lockHeadSQL = `SELECT seq, hash FROM audit_head WHERE stripe = $1 FOR UPDATE`

// appendSQL stores a sealed event and makes it the head of its chain ($13).
const appendSQL = `WITH ins AS (
		INSERT INTO audit_events (seq, at, type, actor_id, company_id, subject_id, ip, user_agent, request_id, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12))
	UPDATE audit_head SET seq = $1, hash = $12 WHERE stripe = $13`

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

// commitAudit appends ev after head, which this transaction holds locked,
// and commits, in one round trip. If the append fails, the server skips the
// COMMIT and the transaction stays open (for endTx to roll back).
func commitAudit(ctx context.Context, c pgConn, ev Event, head auditHead) error {
	e := ev.seal(head.seq+auditStripes, head.hash)
	b := &pgx.Batch{}
	b.Queue(appendSQL, e.Seq, e.Time, e.Type, e.ActorID, e.CompanyID, e.SubjectID, e.IP, e.UserAgent, e.RequestID,
		e.Details, e.PrevHash, e.Hash, head.stripe)
	b.Queue("commit")
	br := c.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
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

// execAudited runs one statement that changes state (none when sql is
// empty) in scope sc and appends ev, in one transaction of two round trips. A statement
// that changes no row is pgx.ErrNoRows ("not found"): nothing is kept and
// nothing recorded.
func (p *Postgres) execAudited(ctx context.Context, sc scope, ev Event, sql string, args ...any) error {
	spec := txSpec{scope: sc, ev: &ev, lockFirst: true}
	if sql == "" {
		return p.inTx(ctx, spec, func(*tx) error { return nil })
	}
	spec.first = &pgx.Batch{}
	spec.first.Queue(sql, args...)
	return p.inTx(ctx, spec, func(t *tx) error { return affected(t.Result()) })
}

// revokeSessions revokes the active sessions in sc at now for reason and
// returns their ids (never nil). The triggers of migration 0006 record each
// in the revocation outbox.
func (t *tx) revokeSessions(sc sessionScope, now time.Time, reason string) ([]string, error) {
	if sc.userID == "" && sc.companyID == "" {
		return nil, errors.New("revoke sessions: no user and no company")
	}
	// Each condition is in the statement only when it selects something, so
	// the plan uses the index of the user's active sessions.
	sql := `UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE revoked_at IS NULL`
	args := []any{micro(now), reason}
	cond := func(c string, v string) {
		args = append(args, v)
		sql += fmt.Sprintf(" AND %s $%d", c, len(args))
	}
	if sc.userID != "" {
		cond("user_id =", sc.userID)
	}
	if sc.companyID != "" {
		cond("company_id =", sc.companyID)
	}
	if sc.except != "" {
		cond("id::text <>", sc.except)
	}
	rows, err := t.Query(sql+` RETURNING id::text`, args...)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if ids == nil {
		ids = []string{}
	}
	return ids, err
}
