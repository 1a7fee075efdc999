package erpapp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/testenv"
	"github.com/erpgate/erpgate/internal/webhooks"
)

// startedWithWebhooks is a started app on the test NATS with the webhook
// settings w.
func startedWithWebhooks(t *testing.T, prefix string, w *Webhooks) *App {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	a := &App{KeyPrefix: prefix, NATS: &NATS{URL: testenv.NATSURL(t)}, WebhooksConfig: w}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

func deleteStream(t *testing.T, prefix string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(testenv.NATSURL(t))
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, events.NamesFor(prefix).Stream)
	})
}

// TestWebhooksAcrossReloads: the app's webhook service delivers once the
// event engine is up; a reload keeps its endpoints (the embedded store is
// lasting) and its deliveries going, with the same or other settings.
func TestWebhooksAcrossReloads(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name() + ":"
	deleteStream(t, prefix)
	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	t.Cleanup(rcv.Close)

	settings := &Webhooks{AllowPrivate: "1", Backoff: "100ms 200ms"}
	old := startedWithWebhooks(t, prefix, settings)
	svc, err := old.Webhooks()
	if err != nil {
		t.Fatal(err)
	}
	u := rcv.URL
	ep, secret, err := svc.Create(t.Context(), "acme", webhooks.EndpointInput{URL: &u, Events: []string{"erp.invoices.*"}})
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create: %v", err)
	}
	eng, err := old.Lasting().EventsWait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	send := func(want int32, within time.Duration) {
		t.Helper()
		ev, _ := events.New("/erpgate/test", "erp.invoices.created", "acme", "i1", nil)
		if err := eng.PublishSync(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(within); got.Load() < want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d deliveries", got.Load(), want)
			}
		}
	}
	send(1, 10*time.Second)

	// A reload with the same settings: the same service.
	next := startedWithWebhooks(t, prefix, &Webhooks{AllowPrivate: "1", Backoff: "100ms 200ms"})
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	svc2, err := next.Webhooks()
	if err != nil || svc2 != svc {
		t.Fatalf("the reload made another service: %v", err)
	}
	send(2, 10*time.Second)

	// Other settings: another service on the same endpoints.
	third := startedWithWebhooks(t, prefix, &Webhooks{AllowPrivate: "1", Backoff: "1s"})
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	svc3, err := third.Webhooks()
	if err != nil || svc3 == svc {
		t.Fatalf("other settings kept the service: %v", err)
	}
	if e, err := svc3.Get(t.Context(), "acme", ep.ID); err != nil || e.URL != u {
		t.Fatalf("the endpoint after the reload: %v", err)
	}
	// The replaced service's last pull request may still take the next
	// message on the server: it is then redelivered after the consumer's
	// AckWait (35 s with the default 10 s timeout) — delayed, not lost.
	send(3, 45*time.Second)
	if err := third.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := third.Webhooks(); err == nil {
		t.Fatal("an unloaded config serves webhooks")
	}
}

func TestWebhooksSettingsRefused(t *testing.T) {
	for name, w := range map[string]*Webhooks{
		"allow_private maybe": {AllowPrivate: "maybe"},
		"backoff soon":        {Backoff: "5s soon"},
		"negative timeout":    {Timeout: caddy.Duration(-time.Second)},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		a := &App{KeyPrefix: "wh-refused:", WebhooksConfig: w}
		if err := a.Provision(ctx); err == nil {
			t.Errorf("%s: provisioned", name)
			_ = a.Cleanup()
		}
		cancel()
	}
	t.Setenv("ERP_TEST_WEBHOOK_BACKOFF", "1s 2s")
	s, err := (&Webhooks{Backoff: "{env.ERP_TEST_WEBHOOK_BACKOFF}", AllowPrivate: "{env.ERP_TEST_UNSET}"}).settings()
	if err != nil || len(s.backoff) != 2 || s.backoff[1] != 2*time.Second || s.allowPrivate {
		t.Fatalf("placeholders: %+v %v", s, err)
	}
}
