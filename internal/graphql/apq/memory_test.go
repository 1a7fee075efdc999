package apq

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func queries(n int) (qs, hs []string) {
	for i := range n {
		q := fmt.Sprintf("{ invoice(id: %q) { number } }", fmt.Sprint(i))
		qs, hs = append(qs, q), append(hs, Hash(q))
	}
	return qs, hs
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	qs, hs := queries(5)
	m := NewMemory(3)
	for i := range 3 {
		if err := m.Put(ctx, hs[i], qs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// use 0 (Get) and 1 (Put again): 2 is now the least recent
	if _, ok, _ := m.Get(ctx, hs[0]); !ok {
		t.Fatal("0 missing")
	}
	if err := m.Put(ctx, hs[1], qs[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, hs[3], qs[3]); err != nil {
		t.Fatal(err)
	}
	want := map[int]bool{0: true, 1: true, 2: false, 3: true}
	for i, in := range want {
		if _, ok, _ := m.Get(ctx, hs[i]); ok != in {
			t.Errorf("after 4th Put: %d stored = %v; want %v", i, ok, in)
		}
	}
	// the Gets above ran in map order; make the order known again: 3, 1, 0
	for _, i := range []int{3, 1, 0} {
		_, _, _ = m.Get(ctx, hs[i])
	}
	if err := m.Put(ctx, hs[4], qs[4]); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.Get(ctx, hs[3]); ok {
		t.Error("3 (least recent) survived the 5th Put")
	}
	if m.Len() != 3 || m.Evicted() != 2 {
		t.Errorf("Len %d, Evicted %d; want 3, 2", m.Len(), m.Evicted())
	}
}

func TestMemoryDefaultBound(t *testing.T) {
	t.Parallel()
	if m := NewMemory(0); m.max != DefaultMemoryEntries {
		t.Fatalf("NewMemory(0).max = %d", m.max)
	}
	if m := NewMemory(-5); m.max != DefaultMemoryEntries {
		t.Fatalf("NewMemory(-5).max = %d", m.max)
	}
}

// TestMemoryConcurrent: many goroutines put and get over a bound smaller
// than the working set; every hit is the text of its hash and the bound
// holds (run with -race).
func TestMemoryConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	qs, hs := queries(64)
	m := NewMemory(16)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 2000 {
				i := (g*7 + n*13) % len(qs)
				if n%3 == 0 {
					if err := m.Put(ctx, hs[i], qs[i]); err != nil {
						errs <- err
						return
					}
					continue
				}
				got, ok, err := m.Get(ctx, hs[i])
				if err != nil || (ok && got != qs[i]) {
					errs <- fmt.Errorf("Get(%d) = %q, %v, %v", i, got, ok, err)
					return
				}
				if l := m.Len(); l > 16 {
					errs <- fmt.Errorf("Len %d over the bound", l)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m.Len() != 16 {
		t.Errorf("Len = %d; want 16 (full)", m.Len())
	}
}

func BenchmarkMemoryGet(b *testing.B) {
	ctx := context.Background()
	qs, hs := queries(256)
	m := NewMemory(1000)
	for i := range qs {
		_ = m.Put(ctx, hs[i], qs[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := m.Get(ctx, hs[i%len(hs)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkMemoryPut(b *testing.B) {
	ctx := context.Background()
	qs, hs := queries(2048)
	m := NewMemory(1000) // smaller than the set: Puts evict
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := m.Put(ctx, hs[i%len(hs)], qs[i%len(qs)]); err != nil {
			b.Fatal(err)
		}
	}
}
