package authsvc

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// staleFirstList answers its first listing of signing keys as it was
// before another instance added one: the race of instances starting
// together on a new database, made certain.
type staleFirstList struct {
	*store.Postgres
	listed bool
}

func (s *staleFirstList) ListSigningKeys(ctx context.Context, p store.KeyPurpose) ([]store.SigningKey, error) {
	if !s.listed {
		s.listed = true
		return nil, nil
	}
	return s.Postgres.ListSigningKeys(ctx, p)
}

// TestFirstKeyOfInstancesStartingTogether: an instance that found no key
// while another was adding the first one signs with the other's key (one
// master key) instead of adding its own, which the other instances would
// not know until their next reload of the keys (their edges refusing its
// tokens meanwhile).
func TestFirstKeyOfInstancesStartingTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pg := store.NewPostgres(pool)
	sealer, err := NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	manager := func(st store.Store) *keyManager {
		return &keyManager{store: st, purpose: store.KeyAccess, sealer: sealer, logger: zap.NewNop(),
			rotation: DefaultKeyRotation, publishDelay: time.Hour, lifetime: 15 * time.Minute, reload: time.Minute}
	}
	now := time.Now()
	a, b := manager(pg), manager(&staleFirstList{Postgres: pg})
	if err := a.sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := b.sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	stored, err := pg.ListSigningKeys(ctx, store.KeyAccess)
	if err != nil {
		t.Fatal(err)
	}
	ka, _ := a.ring.Load().signer(now)
	kb, _ := b.ring.Load().signer(now)
	if len(stored) != 1 || ka.kid != kb.kid || ka.kid != stored[0].KID {
		t.Fatalf("%d keys stored; A signs with %q, B with %q: want one key both sign with", len(stored), ka.kid, kb.kid)
	}
}
