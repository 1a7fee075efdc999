package store

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/erpgate/erpgate/authsvc/loginname"
)

// legacySkeleton marks a row that keeps no look-alike key of its own: a
// real skeleton always has an @, this never does, and the id keeps it unique.
func legacySkeleton(id string) string { return "legacy:" + id }

// backfillLoginNames is migration 0005's Go step (migrate.go): every existing user gets
// its canonical login name and skeleton, decided in one pass over the rows
// (oldest first) and written in one statement.
//
// Rows created before names were normalised may now name one account twice
// (`ａlice` and `alice`) or look alike (`alice` and `alіce`). Nothing is
// deleted or disabled, and no name is given to another account:
//   - Rows with one canonical name: the row already stored under it exactly
//     keeps it, else the oldest takes it. The others keep their stored email
//     (which now normalises to that name, so a login reaches the holder, not
//     them) and a legacy key.
//   - Holders of different names with one skeleton: the oldest keeps the
//     skeleton; the others keep their own canonical name (a login with it
//     reaches them only) and a legacy key.
//   - A stored email that is no valid name any more (a space, a control
//     character) is kept as it is, with a legacy key: no login name reaches it.
//
// Rows with a legacy key are listed by
// `SELECT id, email FROM users WHERE email_skeleton LIKE 'legacy:%'` for an
// admin to review.
func backfillLoginNames(t *tx) error {
	type row struct {
		id, email string
		created   time.Time
		name      loginname.Name
		valid     bool
	}
	rows, err := t.Query(`SELECT id::text, email, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("login names: read users: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.email, &x.created)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("login names: read users: %w", err)
	}
	holder := map[string]int{} // canonical name -> index of the row that holds it
	for i := range all {
		x := &all[i]
		n, err := loginname.Normalize(x.email)
		if err != nil {
			continue
		}
		x.name, x.valid = n, true
		h, taken := holder[n.Email]
		if !taken || (x.email == n.Email && all[h].email != n.Email) {
			holder[n.Email] = i
		}
	}
	ids, emails, skeletons := make([]string, len(all)), make([]string, len(all)), make([]string, len(all))
	keyed := map[string]bool{}
	for i, x := range all {
		ids[i], emails[i], skeletons[i] = x.id, x.email, legacySkeleton(x.id)
		if !x.valid || holder[x.name.Email] != i {
			continue
		}
		emails[i] = x.name.Email
		if !keyed[x.name.Skeleton] {
			keyed[x.name.Skeleton] = true
			skeletons[i] = x.name.Skeleton
		}
	}
	if len(all) > 0 {
		// No row takes a name another row holds (the holder of a canonical
		// name is the row stored under it, when there is one), so the unique
		// indexes hold row by row.
		if _, err := t.Exec(`UPDATE users u SET email = v.email, email_skeleton = v.skeleton
			FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v (id, email, skeleton) WHERE u.id = v.id`,
			ids, emails, skeletons); err != nil {
			return fmt.Errorf("login names: update users: %w", err)
		}
	}
	if _, err := t.Exec(`ALTER TABLE users ALTER COLUMN email_skeleton SET NOT NULL`); err != nil {
		return fmt.Errorf("login names: %w", err)
	}
	return nil
}
