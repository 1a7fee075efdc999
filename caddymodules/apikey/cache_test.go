package apikey

import (
	"fmt"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := NewCache(3)
	a, b := Hash("erp_live_a_secret"), Hash("erp_live_b_secret")
	c.Put(a, Identity{Active: true, KeyID: "k1", CompanyID: "acme"}, now.Add(time.Minute))
	c.Put(b, Identity{Active: true, KeyID: "k1", CompanyID: "acme"}, now.Add(time.Second)) // the rotated secret
	if id, ok := c.Get(a, now); !ok || id.CompanyID != "acme" {
		t.Fatal("fresh entry missing")
	}
	if _, ok := c.Get(b, now.Add(2*time.Second)); ok {
		t.Fatal("entry used past its time")
	}
	c.Forget("k1")
	if _, ok := c.Get(a, now); ok {
		t.Fatal("entry of a forgotten key")
	}
	for i := range 10 {
		c.Put(Hash(fmt.Sprint(i)), Identity{KeyID: fmt.Sprint("k", i)}, now.Add(time.Minute))
	}
	if len(c.m) > 3 {
		t.Fatalf("cache grew to %d", len(c.m))
	}
	for k, hs := range c.byKey {
		for _, h := range hs {
			if _, ok := c.m[h]; !ok {
				t.Fatalf("index of %s points at an evicted entry", k)
			}
		}
	}
}

func TestIntrospectionFailsClosed(t *testing.T) {
	t.Parallel()
	if id := (introspection{Active: true, KeyID: "k"}).identity(); id.Active {
		t.Fatal("an active key without a company passed")
	}
	if id := (introspection{Active: true, KeyID: "k", CompanyID: "acme", Exp: 1}).identity(); id.Expiry.IsZero() {
		t.Fatal("expiry lost")
	}
}

func BenchmarkCachedKey(b *testing.B) {
	c := NewCache(10000)
	key := "erp_live_abcdefgh_0123456789abcdef0123456789abcdef0123456789abcdef"
	now := time.Now()
	c.Put(Hash(key), Identity{Active: true, KeyID: "k", CompanyID: "acme"}, now.Add(time.Hour))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(Hash(key), now); !ok {
				b.Fatal("miss")
			}
		}
	})
}
