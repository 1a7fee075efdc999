// Package stacktest starts the real gateway binary on free loopback ports
// and lets whole-stack tests talk HTTP to it. It owns the gateway processes
// it starts and the binary it builds once per test process; it imports
// nothing of ours and no Caddy (it runs the binary).
//
// The binary is ERP_TEST_BINARY when set (make test builds it once), else it
// is built once per test process (with -race when the tests run with -race).
package stacktest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the path of the gateway binary, building it if needed.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ERP_TEST_BINARY"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(RepoRoot(), p)
		}
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "erpgate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "gateway")
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/gateway")
		cmd := exec.Command("go", args...)
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// FreePort returns a free TCP port on 127.0.0.1, reserved for this test
// until it ends, against every other test process of this machine too.
//
// Caddy listens with SO_REUSEPORT: two gateways given the same port would
// both bind it, and the kernel would split connections between them, so a
// test could silently talk to another test's gateway. A port is free when
// it lies below the kernel's ephemeral range (see listenPortRange), it can
// be bound on every interface, and no other test holds its reservation (a file created with O_EXCL in a shared directory, removed at
// cleanup; one left by a killed test expires after ten minutes).
func FreePort(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "erpgate-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	lo, hi := listenPortRange()
	for range 500 {
		// A port below the kernel's ephemeral range: a port the kernel
		// hands out to clients (the tests open thousands of connections)
		// can be taken by an outgoing connection between this check and the
		// gateway's bind, which then fails with "address already in use".
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port)) // every interface, as Caddy binds ":port"
		if err != nil {
			continue
		}
		_ = l.Close()
		f := filepath.Join(dir, strconv.Itoa(port))
		fd, err := os.OpenFile(f, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			if st, serr := os.Stat(f); serr == nil && time.Since(st.ModTime()) > 10*time.Minute {
				_ = os.Remove(f) // left by a test that was killed
			}
			continue
		}
		_ = fd.Close()
		t.Cleanup(func() { _ = os.Remove(f) })
		return port
	}
	t.Fatal("stacktest: no free port")
	return 0
}

// listenPortRange is where FreePort picks ports: from 10000 up to the start
// of the kernel's ephemeral range (net.ipv4.ip_local_port_range; 32768 by
// default), or 20000–30000 when that range starts too low to leave room.
func listenPortRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				hi = n
			}
		}
	}
	if hi-lo < 2000 {
		return 20000, 30000
	}
	return lo, hi
}

// Options of one gateway instance.
type Options struct {
	// Config is a Caddyfile (or Caddy JSON when Adapter is "json"). Empty means
	// the repository's Caddyfile.example.
	Config string
	// Adapter: "caddyfile" (default) or "json".
	Adapter string
	// Env is added to the instance's environment. ERP_LISTEN, ERP_ADMIN and
	// ERP_DEMO_LISTEN get free ports unless set here.
	Env map[string]string
	// Args replace the default `run --config … --adapter …`.
	Args []string
}

// ExampleConfig is the repository's Caddyfile.example, for tests that
// start from it and change a line.
func ExampleConfig(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Instance is one running gateway.
type Instance struct {
	URL      string // http://<ERP_LISTEN host, 127.0.0.1 when empty>:<port>
	AdminURL string // http://127.0.0.1:<ERP_ADMIN port>
	DemoURL  string // http://127.0.0.1:<ERP_DEMO_LISTEN port>
	Env      map[string]string
	Dir      string // holds the config file

	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logs is everything the instance wrote to stdout and stderr so far.
func (in *Instance) Logs() string { return in.logs.String() }

// Start starts a gateway and waits until its listener answers. It is
// stopped when the test ends; its logs are printed if the test failed.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	bin := Binary(t)
	env := map[string]string{}
	for k, v := range opts.Env {
		env[k] = v
	}
	listen, admin, demo := FreePort(t), FreePort(t), FreePort(t)
	if _, ok := env["ERP_LISTEN"]; !ok {
		env["ERP_LISTEN"] = ":" + strconv.Itoa(listen)
	}
	if _, ok := env["ERP_ADMIN"]; !ok {
		env["ERP_ADMIN"] = "127.0.0.1:" + strconv.Itoa(admin)
	}
	if _, ok := env["ERP_DEMO_LISTEN"]; !ok {
		env["ERP_DEMO_LISTEN"] = "127.0.0.1:" + strconv.Itoa(demo)
	}
	if _, ok := env["ERP_PUBLIC_URL"]; !ok {
		// what browsers and identity providers are sent to: this instance
		env["ERP_PUBLIC_URL"] = "http://" + hostPort(env["ERP_LISTEN"])
	}
	in := &Instance{
		URL:      "http://" + hostPort(env["ERP_LISTEN"]),
		AdminURL: "http://" + hostPort(env["ERP_ADMIN"]),
		DemoURL:  "http://" + hostPort(env["ERP_DEMO_LISTEN"]),
		Env:      env,
		Dir:      t.TempDir(),
		logs:     &syncBuffer{},
		done:     make(chan struct{}),
	}
	args := opts.Args
	if args == nil {
		cfg := opts.Config
		adapter := opts.Adapter
		if adapter == "" {
			adapter = "caddyfile"
		}
		if cfg == "" {
			b, err := os.ReadFile(filepath.Join(RepoRoot(), "Caddyfile.example"))
			if err != nil {
				t.Fatal(err)
			}
			cfg = string(b)
		}
		name := filepath.Join(in.Dir, "Caddyfile")
		if adapter == "json" {
			name = filepath.Join(in.Dir, "caddy.json")
		}
		if err := os.WriteFile(name, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"run", "--config", name}
		if adapter != "json" {
			args = append(args, "--adapter", adapter)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = in.Dir
	cmd.Env = append(os.Environ(), "HOME="+in.Dir, "XDG_DATA_HOME="+in.Dir, "XDG_CONFIG_HOME="+in.Dir)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout = in.logs
	cmd.Stderr = in.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.cmd = cmd
	go func() { _ = cmd.Wait(); close(in.done) }()
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", tail(in.Logs(), 200))
		}
	})
	in.waitReady(t)
	return in
}

func (in *Instance) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-in.done:
			t.Fatalf("gateway exited during start:\n%s", tail(in.Logs(), 100))
		default:
		}
		resp, err := client.Get(in.AdminURL + "/config/")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", strings.TrimPrefix(in.URL, "http://"), time.Second); err == nil {
				c.Close()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway did not become ready:\n%s", tail(in.Logs(), 100))
}

// Stop stops the instance gracefully (SIGTERM), killing it after 10s.
func (in *Instance) Stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// Kill stops the instance at once (SIGKILL).
func (in *Instance) Kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
		<-in.done
	}
}

// Pid is the process id.
func (in *Instance) Pid() int { return in.cmd.Process.Pid }

// loadClient opens a connection of its own for each admin load.
var loadClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Load replaces the running config through the admin API.
func (in *Instance) Load(ctx context.Context, body []byte, contentType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.AdminURL+"/load", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	// A load restarts the admin server, whose predecessor closes its idle
	// connections after answering: never a pooled connection, which may be
	// one of those.
	req.Close = true
	resp, err := loadClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("load: %s: %s", resp.Status, b.String())
	}
	return nil
}

func hostPort(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
