package erpapp

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

type keptValue struct{ destroyed int }

func (k *keptValue) Destruct() error { k.destroyed++; return nil }

func provisioned(t *testing.T, prefix string) *App {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	a := &App{KeyPrefix: prefix}
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLastingHandedOver: a reload (a new config provisioned before the old
// one is cleaned up) takes over the Lasting and the values kept in it; they
// go when the last config holding them is cleaned up, not before.
func TestLastingHandedOver(t *testing.T) {
	t.Parallel()
	old := provisioned(t, "lasting-test-1:")
	made := 0
	mk := func(*Lasting) (*keptValue, error) { made++; return &keptValue{}, nil }
	v1, err := Keep(old, "settings", mk)
	if err != nil {
		t.Fatal(err)
	}
	mem := old.Lasting().QuotaMemory()

	next := provisioned(t, "lasting-test-1:")
	if next.Lasting() != old.Lasting() {
		t.Fatal("a reload with the same settings made a new Lasting")
	}
	v2, err := Keep(next, "settings", mk)
	if err != nil || v2 != v1 || made != 1 {
		t.Fatalf("kept value not handed over: %p %p made=%d %v", v1, v2, made, err)
	}
	other, err := Keep(next, "other settings", mk)
	if err != nil || other == v1 {
		t.Fatalf("other settings share a value: %v", err)
	}

	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if v1.destroyed != 0 || next.Lasting().Context().Err() != nil || next.Lasting().QuotaMemory() != mem {
		t.Fatal("the old config's cleanup destroyed what the new config holds")
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if v1.destroyed != 1 || other.destroyed != 1 || next.Lasting().Context().Err() == nil {
		t.Fatal("the last config's cleanup left lasting state behind")
	}

	// a config after that starts afresh
	again := provisioned(t, "lasting-test-1:")
	defer again.Cleanup()
	if again.Lasting() == old.Lasting() {
		t.Fatal("a destroyed Lasting was reused")
	}
}

// TestLastingKeyedBySettings: another key prefix is another Lasting.
func TestLastingKeyedBySettings(t *testing.T) {
	t.Parallel()
	a, b := provisioned(t, "lasting-test-2a:"), provisioned(t, "lasting-test-2b:")
	defer a.Cleanup()
	defer b.Cleanup()
	if a.Lasting() == b.Lasting() || a.Lasting().Revocations() == b.Lasting().Revocations() {
		t.Fatal("different settings share a Lasting")
	}
}

// TestAuthServiceOfLiveConfigs: the edge's auth service is one of a live
// config with an erp_authsvc handler, never one of a config cleaned up.
func TestAuthServiceOfLiveConfigs(t *testing.T) {
	t.Parallel()
	plain := provisioned(t, "lasting-test-3:")
	defer plain.Cleanup()
	if _, err := plain.AuthService(); err == nil {
		t.Fatal("an auth service without an erp_authsvc handler")
	}
	host := provisioned(t, "lasting-test-3:")
	host.HostAuthService()
	svc, err := plain.AuthService()
	if err != nil {
		t.Fatal(err)
	}
	if own, err := host.ServedAuthService(); err != nil || own != svc {
		t.Fatalf("the edge's service is not the hosting config's: %v", err)
	}
	if err := host.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.AuthService(); err == nil {
		t.Fatal("the auth service of a cleaned-up config is still used")
	}
}

// TestAuthServiceAfterReload: when the config whose service a request chose
// is unloaded, the request is given the newer config's service to retry
// with; the same service, or a request that is done, gets none.
func TestAuthServiceAfterReload(t *testing.T) {
	t.Parallel()
	edge := provisioned(t, "lasting-test-4:")
	defer edge.Cleanup()
	octx, ocancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer ocancel()
	old := &App{KeyPrefix: "lasting-test-4:"}
	if err := old.Provision(octx); err != nil {
		t.Fatal(err)
	}
	old.HostAuthService()
	chosen, err := edge.AuthService()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := edge.AuthServiceAfter(ctx, chosen); got != nil {
		t.Fatal("a retry offered while the chosen service is still the edge's")
	}
	next := provisioned(t, "lasting-test-4:")
	defer next.Cleanup()
	next.HostAuthService()
	ocancel() // the reload unloads the old config: its context ends first
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	newer, err := next.ServedAuthService()
	if err != nil {
		t.Fatal(err)
	}
	if got := edge.AuthServiceAfter(ctx, chosen); got != newer {
		t.Fatalf("retry with %p, want the newer config's %p", got, newer)
	}
	if got := edge.AuthServiceAfter(ctx, newer); got != nil {
		t.Fatal("a retry offered on the same service")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if got := edge.AuthServiceAfter(done, chosen); got != nil {
		t.Fatal("a retry offered to a request that is done")
	}
}
