// Package redisproc runs a private redis-server for tests that must stop
// and restart Redis without disturbing anyone else's (the shared server of
// `make test` stays up). It is for tests only and owns the redis-server
// processes it starts; of ours it imports only internal/stacktest, and no
// Caddy.
package redisproc

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// Server is one redis-server child process on a fixed loopback port.
type Server struct {
	Port int
	URL  string // redis://127.0.0.1:<port>/0

	t   testing.TB
	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts redis-server (without persistence) on a free port; it is
// killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redisproc: redis-server not found (make test installs it): %v", err)
	}
	port := stacktest.FreePort(t)
	s := &Server{Port: port, URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), t: t}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again after Stop (same port), and waits until
// it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redisproc: already running")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redisproc: start: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.Port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal("redisproc: redis-server did not answer")
}

// Stop kills the server (SIGKILL: like a crash) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
