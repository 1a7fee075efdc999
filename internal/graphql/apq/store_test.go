package apq

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/testenv"
)

// runContract is the one suite every Store passes.
func runContract(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	const q = `{ invoices(first: 20) { nodes { number } } }`
	h := Hash(q)

	t.Run("miss then put then get", func(t *testing.T) {
		s := newStore(t)
		if got, ok, err := s.Get(ctx, h); err != nil || ok || got != "" {
			t.Fatalf("Get before Put = %q, %v, %v; want miss", got, ok, err)
		}
		if err := s.Put(ctx, h, q); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, ok, err := s.Get(ctx, h)
		if err != nil || !ok || got != q {
			t.Fatalf("Get = %q, %v, %v; want the query", got, ok, err)
		}
		if err := s.Put(ctx, h, q); err != nil {
			t.Fatalf("Put again: %v", err)
		}
	})
	t.Run("another query's hash is refused", func(t *testing.T) {
		s := newStore(t)
		other := `{ customers(first: 1) { nodes { email } } }`
		if err := s.Put(ctx, h, other); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("Put(poison) = %v; want ErrHashMismatch", err)
		}
		if _, ok, err := s.Get(ctx, h); err != nil || ok {
			t.Fatalf("Get after refused Put = %v, %v; want miss", ok, err)
		}
		// the same text with one more space is another document
		if err := s.Put(ctx, h, q+" "); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("Put(q+space) = %v; want ErrHashMismatch", err)
		}
	})
	t.Run("invalid hashes", func(t *testing.T) {
		s := newStore(t)
		for _, bad := range []string{"", "abc", strings.ToUpper(h), h[:63], h + "0", h[:63] + "g", "sha256:" + h[7:]} {
			if _, _, err := s.Get(ctx, bad); !errors.Is(err, ErrInvalidHash) {
				t.Errorf("Get(%q) = %v; want ErrInvalidHash", bad, err)
			}
			if err := s.Put(ctx, bad, q); !errors.Is(err, ErrInvalidHash) {
				t.Errorf("Put(%q) = %v; want ErrInvalidHash", bad, err)
			}
		}
	})
	t.Run("size bound", func(t *testing.T) {
		s := newStore(t)
		at := "#" + strings.Repeat("x", MaxQueryBytes-1)
		if err := s.Put(ctx, Hash(at), at); err != nil {
			t.Fatalf("Put of MaxQueryBytes: %v", err)
		}
		if got, ok, err := s.Get(ctx, Hash(at)); err != nil || !ok || got != at {
			t.Fatalf("Get of MaxQueryBytes: ok %v, err %v, len %d", ok, err, len(got))
		}
		over := at + "x"
		if err := s.Put(ctx, Hash(over), over); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Put of MaxQueryBytes+1 = %v; want ErrTooLarge", err)
		}
		if _, ok, _ := s.Get(ctx, Hash(over)); ok {
			t.Fatal("a refused query is stored")
		}
	})
}

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	runContract(t, func(*testing.T) Store { return NewMemory(16) })
}

func TestRedisContract(t *testing.T) {
	t.Parallel()
	runContract(t, func(t *testing.T) Store {
		rdb, prefix := testenv.RedisClient(t)
		return NewRedis(rdb, prefix, 0)
	})
}

func TestHash(t *testing.T) {
	t.Parallel()
	// sha256("") and sha256("abc") from FIPS 180-2
	for in, want := range map[string]string{
		"":    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	} {
		if got := Hash(in); got != want || !ValidHash(got) {
			t.Errorf("Hash(%q) = %s; want %s", in, got, want)
		}
	}
}
