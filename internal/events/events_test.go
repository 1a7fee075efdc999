package events

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/testenv"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "erp.invoices.created", true},
		{"erp.*", "erp.invoices.created", true},
		{"erp.invoices.*", "erp.invoices.created", true},
		{"erp.invoices.*", "erp.invoices", false},
		{"erp.invoices.*", "erp.customers.created", false},
		{"erp.*.created", "erp.invoices.created", true},
		{"erp.*.created", "erp.invoices.updated", false},
		{"erp.*.created", "erp.invoices.created.x", false},
		{"erp.invoices.created", "erp.invoices.created", true},
		{"erp.invoices.created", "erp.invoices.created2", false},
		{"erp.auth.*", "erp.auth.mfa.verified", true},
	}
	for _, c := range cases {
		if !ValidPattern(c.pattern) {
			t.Fatalf("ValidPattern(%q) = false", c.pattern)
		}
		if got := Match(c.pattern, c.typ); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.typ, got, c.want)
		}
	}
	for _, bad := range []string{"", "erp..x", "erp.>", "erp.in voices", "erp.inv*", ".erp"} {
		if ValidPattern(bad) {
			t.Errorf("ValidPattern(%q) = true", bad)
		}
	}
}

func TestCompanyToken(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []string{"acme", "a.b", "a*b", "_", "", "x61", "a>b", "ünï"} {
		tok := CompanyToken(c)
		if !ValidType(tok) {
			t.Errorf("CompanyToken(%q) = %q is not one subject token", c, tok)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("CompanyToken(%q) = CompanyToken(%q) = %q", c, other, tok)
		}
		seen[tok] = c
	}
}

// roundTrip publishes through Publish (async) and PublishSync and reads the
// events back from the stream, one company's only.
func roundTrip(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	for i := range 20 {
		company := "acme"
		if i%2 == 1 {
			company = "globex"
		}
		ev, err := New(EdgeSource("test"), "erp.invoices.created", company, fmt.Sprint(i), map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if i == 10 { // Publish's events are in order among themselves, not with PublishSync's
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i < 10 {
			e.Publish(ev)
			e.Publish(ev) // a retry: stored once
		} else if err := e.PublishSync(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if company == "acme" {
			ids = append(ids, ev.ID)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := e.JetStream().OrderedConsumer(ctx, e.Names().Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{e.Names().CompanyFilter("acme", "erp.invoices.*")},
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		var ev Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.CompanyID != "acme" || ev.SpecVersion != "1.0" || ev.Type != "erp.invoices.created" {
			t.Fatalf("event %+v", ev)
		}
		got = append(got, ev.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("acme's events: got %d %v, want %d %v", len(got), got, len(ids), ids)
	}
}

func TestEmbedded(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(context.Background(), Config{StoreDir: dir, Names: NamesFor("t_embedded:")})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, e)
	if _, err := Open(context.Background(), Config{StoreDir: dir}); err != ErrStoreInUse {
		t.Fatalf("a second engine on the same store: %v, want ErrStoreInUse", err)
	}
	e.Close()
	// the file store keeps the events across a restart
	e, err = Open(context.Background(), Config{StoreDir: dir, Names: NamesFor("t_embedded:")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := e.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 20 {
		t.Fatalf("after a restart the stream holds %d events, want 20", n)
	}
}

func TestExternal(t *testing.T) {
	names := NamesFor(testenv.Name() + ":")
	e, err := Open(context.Background(), Config{URL: testenv.NATSURL(t), Names: names})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Cleanup(func() { _ = e.JetStream().DeleteStream(context.Background(), names.Stream) })
	roundTrip(t, e)
}
