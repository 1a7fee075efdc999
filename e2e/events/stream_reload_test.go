package events

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestStreamSurvivesReload: the hub lives in the erp app's Lasting, so a
// config reload neither ends open streams nor loses an event; streams
// opened after it work as well.
func TestStreamSurvivesReload(t *testing.T) {
	s := startStack(t, 1)
	in := s.ins[0]
	alice := login(t, in, "alice@acme.test", "acme")
	before, _, _ := openSSE(t, in.URL, "", alice.Access, nil)
	cfg, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// a changed config (an identical one is not reloaded)
	changed := bytes.Replace(cfg, []byte("max_size {$ERP_MAX_BODY:10MB}"), []byte("max_size {$ERP_MAX_BODY:11MB}"), 1)
	if bytes.Equal(changed, cfg) {
		t.Fatal("Caddyfile.example no longer has max_size {$ERP_MAX_BODY:10MB}")
	}
	if err := in.Load(ctx, changed, "text/caddyfile"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(in.Logs(), "load complete"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) { // the log line follows the admin answer by an instant
			t.Fatal("the config was not reloaded")
		}
	}
	after, _, _ := openSSE(t, in.URL, "", alice.Access, nil)
	ev := s.publish(t, "acme", "erp.invoices.created", "RELOAD")
	for name, st := range map[string]*sse{"opened before the reload": before, "opened after": after} {
		if f := st.next(t, 10*time.Second); f.cloudEvent(t).ID != ev.ID {
			t.Fatalf("stream %s: %+v", name, f)
		}
	}
}
