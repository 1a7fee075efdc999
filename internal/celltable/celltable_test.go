package celltable

import (
	"strconv"
	"sync"
	"testing"
)

func TestTable(t *testing.T) {
	t.Parallel()
	var tb Table
	if tb.Of("acme") != "" || tb.Len() != 0 {
		t.Fatal("zero table is not empty")
	}
	tb.Set("acme", "eu")
	tb.Set("globex", "us")
	if tb.Of("acme") != "eu" || tb.Of("globex") != "us" || tb.Of("initech") != "" {
		t.Fatalf("after Set: %q %q", tb.Of("acme"), tb.Of("globex"))
	}
	tb.Set("acme", "")
	if tb.Of("acme") != "" || tb.Len() != 1 {
		t.Fatal("cleared cell still there")
	}
	if !tb.Replace(map[string]string{"acme": "us", "x": ""}) {
		t.Fatal("Replace reported no change")
	}
	if tb.Replace(map[string]string{"acme": "us"}) {
		t.Fatal("Replace with the same table reported a change")
	}
	if tb.Of("globex") != "" || tb.Of("acme") != "us" || tb.Len() != 1 {
		t.Fatalf("after Replace: %q %q", tb.Of("globex"), tb.Of("acme"))
	}
}

// Readers never see a torn table while writers move companies.
func TestTableConcurrent(t *testing.T) {
	t.Parallel()
	var tb Table
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				tb.Set("c"+strconv.Itoa(w), []string{"eu", "us"}[i%2])
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				if c := tb.Of("c1"); c != "" && c != "eu" && c != "us" {
					t.Errorf("read %q", c)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkOf(b *testing.B) {
	var tb Table
	for i := range 1000 {
		tb.Set("company"+strconv.Itoa(i), "eu")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if tb.Of("company500") != "eu" {
				b.Fatal("miss")
			}
		}
	})
}
