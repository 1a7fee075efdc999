package authsvc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
)

// countingOps counts the secret work of an API key look-up: SHA-256 of the
// presented key, and constant-time comparisons with the lengths compared
// (subtle.ConstantTimeCompare's time depends on them).
type countingOps struct {
	mu     sync.Mutex
	hashes int
	equals []int // len(a)+len(b) of each comparison
}

func (c *countingOps) hash(key string) []byte {
	c.mu.Lock()
	c.hashes++
	c.mu.Unlock()
	return constantTime{}.hash(key)
}

func (c *countingOps) equal(a, b []byte) bool {
	c.mu.Lock()
	c.equals = append(c.equals, len(a)+len(b))
	c.mu.Unlock()
	return constantTime{}.equal(a, b)
}

// countingStore counts the store calls of a look-up.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func (c *countingStore) FindAPIKey(ctx context.Context, prefix string) (store.APIKey, error) {
	c.count("FindAPIKey")
	return c.Store.FindAPIKey(ctx, prefix)
}

func (c *countingStore) GetCompany(ctx context.Context, id string) (store.Company, error) {
	c.count("GetCompany")
	return c.Store.GetCompany(ctx, id)
}

// apiKeyService is a Service on st with one company and two API keys of
// it: `plain` (one secret) and `rotated` (in its grace period, two).
func apiKeyService(tb testing.TB, st store.Store) (s *Service, plain, rotated, rotatedOld string) {
	tb.Helper()
	ctx := context.Background()
	s, err := New(ctx, Config{}, Deps{Logger: zap.NewNop(), Store: st, Hasher: NewArgon2idParams(1, 64, 1, 4)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	co := store.Company{ID: uuid.NewString(), Name: "Acme", Plan: "standard", CreatedAt: now}
	if err := st.CreateCompany(ctx, co, store.Event{Time: now, Type: store.EventCompanyCreated, CompanyID: co.ID}); err != nil {
		tb.Fatal(err)
	}
	add := func() (store.APIKey, string) {
		prefix := newAPIKeyPrefix()
		secret, h := newAPIKeySecret(prefix)
		k := store.APIKey{ID: uuid.NewString(), CompanyID: co.ID, Prefix: prefix, SecretHash: h, Scope: []string{"invoices:read"}, Plan: "standard", CreatedAt: now}
		if err := st.CreateAPIKey(ctx, k, store.Event{Time: now, Type: store.EventAPIKeyCreated, CompanyID: co.ID, SubjectID: k.ID}); err != nil {
			tb.Fatal(err)
		}
		return k, secret
	}
	_, plain = add()
	rk, old := add()
	rotated, h := newAPIKeySecret(rk.Prefix)
	if _, err := st.RotateAPIKey(ctx, co.ID, rk.ID, h, now.Add(time.Hour), now, store.Event{Time: now, Type: store.EventAPIKeyRotated, CompanyID: co.ID, SubjectID: rk.ID}); err != nil {
		tb.Fatal(err)
	}
	return s, plain, rotated, old
}

// wrongSecret keeps key's prefix and changes its secret.
func wrongSecret(key string) string {
	prefix, _ := parseAPIKey(key)
	k, _ := newAPIKeySecret(prefix)
	return k
}

// unknownPrefix is a well-formed key whose prefix names no key.
func unknownPrefix(tb testing.TB, st store.Store) string {
	for {
		p := newAPIKeyPrefix()
		if _, err := st.FindAPIKey(context.Background(), p); err != nil {
			k, _ := newAPIKeySecret(p)
			return k
		}
	}
}

// TestAPIKeyMissDoesTheWorkOfAWrongSecret: an unknown prefix costs what a
// known prefix with a wrong secret costs — the same store calls, one hash,
// two comparisons of the same lengths — and gets the same answer. No clock:
// the work is counted.
func TestAPIKeyMissDoesTheWorkOfAWrongSecret(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: store.NewMemory(), calls: map[string]int{}}
	s, plain, rotated, old := apiKeyService(t, st)
	ops := &countingOps{}
	s.apiKeySecrets = ops
	ctx := context.Background()

	type work struct {
		answer Introspection
		hashes int
		equals []int
		store  map[string]int
	}
	measure := func(key string) work {
		t.Helper()
		ops.mu.Lock()
		ops.hashes, ops.equals = 0, nil
		ops.mu.Unlock()
		st.mu.Lock()
		st.calls = map[string]int{}
		st.mu.Unlock()
		in, err := s.IntrospectAPIKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return work{answer: in, hashes: ops.hashes, equals: ops.equals, store: st.calls}
	}
	// The keys work: the current secrets, and the old one in its grace period.
	for name, key := range map[string]string{"plain": plain, "rotated": rotated, "rotated, old secret": old} {
		if w := measure(key); !w.answer.Active {
			t.Fatalf("%s key: %+v", name, w.answer)
		}
	}
	want := measure(wrongSecret(plain))
	if want.answer != (Introspection{Status: "invalid"}) || want.hashes != 1 || len(want.equals) != 2 || want.store["FindAPIKey"] != 1 || want.store["GetCompany"] != 0 {
		t.Fatalf("known prefix, wrong secret: %+v", want)
	}
	for name, key := range map[string]string{
		"unknown prefix":                   unknownPrefix(t, st.Store),
		"rotated key, wrong secret":        wrongSecret(rotated),
		"unknown prefix, rotated's secret": withPrefix(rotated, unknownPrefix(t, st.Store)),
	} {
		got := measure(key)
		if got.answer != want.answer || got.hashes != want.hashes || len(got.equals) != len(want.equals) ||
			got.store["FindAPIKey"] != want.store["FindAPIKey"] || got.store["GetCompany"] != want.store["GetCompany"] {
			t.Errorf("%s: %+v, a known prefix with a wrong secret: %+v", name, got, want)
		}
		for i := range got.equals {
			if got.equals[i] != want.equals[i] {
				t.Errorf("%s: comparison %d of %d bytes, want %d", name, i, got.equals[i], want.equals[i])
			}
		}
	}
}

// withPrefix is key's secret under other's prefix.
func withPrefix(key, other string) string {
	p, _ := parseAPIKey(other)
	return apiKeyScheme + p + key[len(apiKeyScheme)+apiKeyPrefixLen:]
}

// BenchmarkIntrospectMiss is the pair whose figures should match: a known
// prefix with a wrong secret, and a prefix that names no key (memory store:
// the CPU work alone, no round trip to hide it).
func BenchmarkIntrospectMiss(b *testing.B) {
	st := store.NewMemory()
	s, plain, _, _ := apiKeyService(b, st)
	ctx := context.Background()
	for _, bc := range []struct{ name, key string }{
		{"key=hit-wrong-secret", wrongSecret(plain)},
		{"key=unknown-prefix", unknownPrefix(b, st)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if in, err := s.IntrospectAPIKey(ctx, bc.key); err != nil || in.Active {
					b.Fatal(in, err)
				}
			}
		})
	}
}
