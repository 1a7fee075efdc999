package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// Entries are stored with increasing revisions, a key's newer entry
// replaces the older, a deletion is kept (as a nil Value), and Since reads
// what is above a revision, in order.
func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	p := NewPostgres(pool)
	got, err := p.Since(ctx, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	first, err := p.Put(ctx, []Entry{
		{Key: Key{KindBackend, "gl"}, Value: raw(`{"versions":{"v1":{"upstreams":["http://a/v1"]}}}`)},
		{Key: Key{KindQuotaOverride, "acme"}, Value: raw(`{"rate":"5/m"}`)},
	}, "edge-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].Revision >= first[1].Revision || first[1].Origin != "edge-a" {
		t.Fatalf("stored %+v", first)
	}
	second, err := p.Put(ctx, []Entry{{Key: Key{KindBackend, "gl"}}}, "edge-b")
	if err != nil {
		t.Fatal(err)
	}
	all, err := p.Since(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "acme" || all[1].Name != "gl" || all[1].Value != nil || all[1].Origin != "edge-b" ||
		all[1].Revision != second[0].Revision || string(all[0].Value) != `{"rate":"5/m"}` {
		t.Fatalf("all = %+v", all)
	}
	newer, err := p.Since(ctx, first[1].Revision)
	if err != nil || len(newer) != 1 || newer[0].Name != "gl" {
		t.Fatalf("since = %+v %v", newer, err)
	}
}
