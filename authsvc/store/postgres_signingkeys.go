package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// signingKeyTables maps each purpose to its table (never built from input).
var signingKeyTables = map[KeyPurpose]string{KeyAccess: "signing_keys", KeyAssertion: "assertion_keys"}

func signingKeyTable(op string, purpose KeyPurpose) (string, error) {
	t, ok := signingKeyTables[purpose]
	if !ok {
		return "", fmt.Errorf("%s: unknown purpose %q", op, purpose)
	}
	return t, nil
}

func scanSigningKey(row pgx.Row) (SigningKey, error) {
	var k SigningKey
	err := row.Scan(&k.KID, &k.Alg, &k.PublicKey, &k.SealedPrivate, &k.CreatedAt, &k.ActivatesAt)
	k.CreatedAt, k.ActivatesAt = k.CreatedAt.UTC(), k.ActivatesAt.UTC()
	return k, err
}

func (p *Postgres) ListSigningKeys(ctx context.Context, purpose KeyPurpose) ([]SigningKey, error) {
	table, err := signingKeyTable("list signing keys", purpose)
	if err != nil {
		return nil, err
	}
	out, err := collect(scanSigningKey)(p.pool.Query(ctx, `SELECT kid, alg, public_key, sealed_private, created_at, activates_at FROM `+table+`
		ORDER BY activates_at, kid`))
	if err != nil {
		return nil, wrap("list signing keys", err)
	}
	return out, nil
}

func (p *Postgres) AddSigningKey(ctx context.Context, purpose KeyPurpose, k SigningKey) error {
	table, err := signingKeyTable("add signing key", purpose)
	if err != nil {
		return err
	}
	_, err = p.pool.Exec(ctx, `INSERT INTO `+table+` (kid, alg, public_key, sealed_private, created_at, activates_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.KID, k.Alg, k.PublicKey, k.SealedPrivate, micro(k.CreatedAt), micro(k.ActivatesAt))
	return wrap("add signing key", err)
}

func (p *Postgres) DeleteSigningKey(ctx context.Context, purpose KeyPurpose, kid string) error {
	table, err := signingKeyTable("delete signing key", purpose)
	if err != nil {
		return err
	}
	return wrap("delete signing key", affected(p.pool.Exec(ctx, `DELETE FROM `+table+` WHERE kid = $1`, kid)))
}

// AddSigningKeyIfUnchanged adds k unless the keys of purpose are no longer
// exactly seen (kids): another instance added or removed one since the
// caller listed them. Instances starting together on one database each
// find no key; the first to take the lock adds one, and the others, which
// lose, re-read and sign with it (the same master key seals it), instead
// of each adding its own, unknown to the others until their next reload.
func (p *Postgres) AddSigningKeyIfUnchanged(ctx context.Context, purpose KeyPurpose, k SigningKey, seen []string) (bool, error) {
	table, err := signingKeyTable("add signing key", purpose)
	if err != nil {
		return false, err
	}
	added := false
	err = p.inTx(ctx, txSpec{}, func(t *tx) error {
		// one lock per table: adders of a purpose take turns
		if _, err := t.Exec(`SELECT pg_advisory_xact_lock(hashtext($1))`, "erpgate:"+table); err != nil {
			return err
		}
		rows, err := t.Query(`SELECT kid FROM ` + table)
		if err != nil {
			return err
		}
		now, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if !sameKIDs(now, seen) {
			return nil
		}
		if _, err := t.Exec(`INSERT INTO `+table+` (kid, alg, public_key, sealed_private, created_at, activates_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.KID, k.Alg, k.PublicKey, k.SealedPrivate, micro(k.CreatedAt), micro(k.ActivatesAt)); err != nil {
			return err
		}
		added = true
		return nil
	})
	return added, wrap("add signing key", err)
}

// sameKIDs says whether a and b hold the same kids, in any order.
func sameKIDs(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[string]bool, len(a))
	for _, k := range a {
		in[k] = true
	}
	for _, k := range b {
		if !in[k] {
			return false
		}
	}
	return true
}
