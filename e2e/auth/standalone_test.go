package auth

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestStandalone runs `gateway authsvc --config FILE` (plain net/http) with
// a YAML file whose listen address the environment overrides.
func TestStandalone(t *testing.T) {
	t.Parallel()
	port := stacktest.FreePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "authsvc.yaml")
	if err := os.WriteFile(file, []byte("listen: \"127.0.0.1:1\"\ndemo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stacktest.Binary(t), "authsvc", "--config", file)
	cmd.Env = append(os.Environ(), "ERP_LISTEN=127.0.0.1:"+strconv.Itoa(port), "ERP_INTROSPECTION_SECRET="+edgeSecret,
		"ERP_POSTGRES_URL=", "ERP_REDIS_URL=", "ERP_MASTER_KEY="+masterKey(), "HOME="+dir)
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standalone auth service did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	flow(t, client{t: t, base: "http://" + addr})
}
