package deprecations

import (
	"fmt"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	t.Parallel()
	c := New()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	sunset := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	c.Add("acme", "invoices", "v1", at, sunset, "/api/v2/invoices")
	c.Add("acme", "invoices", "v1", at.Add(time.Hour), sunset, "/api/v2/invoices")
	c.Add("acme", "customers", "v1", at, time.Time{}, "")
	c.Add("globex", "invoices", "v1", at, sunset, "")
	got := c.List("acme")
	if len(got) != 2 || got[0].Backend != "customers" || got[1].Calls != 2 || !got[1].LastCall.Equal(at.Add(time.Hour)) ||
		!got[1].FirstCall.Equal(at) || got[1].Sunset == nil || !got[1].Sunset.Equal(sunset) || got[0].Sunset != nil {
		t.Fatalf("%+v", got)
	}
	if other := c.List("initech"); other == nil || len(other) != 0 {
		t.Fatalf("unknown company: %v", other)
	}
	// a copy: the caller cannot change the counts
	got[1].Sunset.AddDate(1, 0, 0)
	got[1].Calls = 99
	if again := c.List("acme"); again[1].Calls != 2 {
		t.Fatalf("List shares its entries: %+v", again)
	}
}

func TestCounterBounded(t *testing.T) {
	t.Parallel()
	c := New()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxKeys {
		if !c.Add(fmt.Sprint("c", i), "invoices", "v1", at, time.Time{}, "") {
			t.Fatalf("refused key %d of %d", i, maxKeys)
		}
	}
	if c.Add("one-more", "invoices", "v1", at, time.Time{}, "") {
		t.Fatal("counted past the bound")
	}
	if !c.Add("c0", "invoices", "v1", at, time.Time{}, "") {
		t.Fatal("a known key is no longer counted when full")
	}
}
