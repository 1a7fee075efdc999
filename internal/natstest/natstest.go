// Package natstest runs a NATS JetStream cluster of real nats-server
// processes on loopback for tests that must see a node die: N servers with
// cluster routes between them, each with its own client, route and
// monitoring port and its own store directory. Kill(i) stops node i with
// SIGKILL (no goodbye to its peers, its store as a crash leaves it),
// Restart(i) starts it again on the same ports and store.
//
// The binary is ERP_TEST_NATS_SERVER when set (`make test` passes
// $PWD/bin/nats-server, which `make bin/nats-server` builds), else it is
// built once per test process from the nats-server module go.mod pins. A
// cluster that does not come up fails the test; nothing skips.
//
// Owns the processes it starts (stopped when the test ends) and nothing
// else; imports stacktest for ports only, and no Caddy.
package natstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/stacktest"
)

var (
	clusters  atomic.Int64
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary is the nats-server binary: ERP_TEST_NATS_SERVER, or one built
// from the module once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ERP_TEST_NATS_SERVER"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(stacktest.RepoRoot(), p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("natstest: ERP_TEST_NATS_SERVER: %v (make bin/nats-server builds it)", err)
		}
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "erpgate-nats-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/nats-io/nats-server/v2")
		cmd.Dir = stacktest.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("natstest: go build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Node is one nats-server of a Cluster.
type Node struct {
	Name        string // server_name: n0, n1, …
	Port        int    // client port on 127.0.0.1
	ClusterPort int
	MonitorPort int
	Dir         string // store directory and config file

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

// URL is the node's client URL.
func (n *Node) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.Port) }

// Running reports whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Logs are what the node's processes wrote so far (all its lives).
func (n *Node) Logs() string { return n.logs.String() }

// Cluster is N nats-server processes routed to each other.
type Cluster struct {
	Nodes []*Node
	t     testing.TB
	bin   string
}

// Start starts an n-node JetStream cluster and waits until it has a meta
// leader every node agrees on and all peers are current. The nodes are
// killed when the test ends (their logs printed if it failed).
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t)}
	root := t.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Name: "n" + strconv.Itoa(i), Port: stacktest.FreePort(t), ClusterPort: stacktest.FreePort(t),
			MonitorPort: stacktest.FreePort(t), Dir: filepath.Join(root, "n"+strconv.Itoa(i)), logs: &syncBuffer{},
		})
	}
	name := fmt.Sprintf("erpgate_test_%d_%d", os.Getpid(), clusters.Add(1)) // parallel tests' clusters apart
	for _, node := range c.Nodes {
		if err := os.MkdirAll(node.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		var routes []string
		for _, o := range c.Nodes {
			if o != node {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
			}
		}
		cfg := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, node.Name, node.Port, node.MonitorPort, node.Dir, name, node.ClusterPort, strings.Join(routes, ", "))
		if err := os.WriteFile(filepath.Join(node.Dir, "nats.conf"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			c.kill(node)
		}
		if t.Failed() {
			for _, node := range c.Nodes {
				t.Logf("nats-server %s logs (tail):\n%s", node.Name, tail(node.Logs(), 40))
			}
		}
	})
	for _, node := range c.Nodes {
		c.start(node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("natstest: cluster not ready: %v", err)
	}
	return c
}

func (c *Cluster) start(node *Node) {
	c.t.Helper()
	cmd := exec.Command(c.bin, "-c", filepath.Join(node.Dir, "nats.conf"))
	cmd.Stdout, cmd.Stderr = node.logs, node.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("natstest: start %s: %v", node.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	node.mu.Lock()
	node.cmd, node.done = cmd, done
	node.mu.Unlock()
}

func (c *Cluster) kill(node *Node) {
	node.mu.Lock()
	cmd, done := node.cmd, node.done
	node.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// URLs are the client URLs of every node, comma-separated (the form
// ERP_NATS_URL and nats.Connect take).
func (c *Cluster) URLs() string {
	var u []string
	for _, n := range c.Nodes {
		u = append(u, n.URL())
	}
	return strings.Join(u, ",")
}

// Kill stops node i at once (SIGKILL).
func (c *Cluster) Kill(i int) { c.kill(c.Nodes[i]) }

// Restart starts node i again (after Kill) on its ports and store and
// waits until it is back in the cluster and current.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.kill(c.Nodes[i])
	c.start(c.Nodes[i])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		c.t.Fatalf("natstest: %s not back: %v", c.Nodes[i].Name, err)
	}
}

// Index is the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.Nodes {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// jsz is the part of a node's /jsz we read.
type jsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// WaitReady waits until every running node agrees on one meta leader and
// sees every other running node as a current peer.
func (c *Cluster) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if last = c.ready(ctx, client); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready(ctx context.Context, client *http.Client) error {
	running := map[string]bool{}
	for _, n := range c.Nodes {
		if n.Running() {
			running[n.Name] = true
		}
	}
	leader := ""
	for _, n := range c.Nodes {
		if !running[n.Name] {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jsz", n.MonitorPort), nil)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		var j jsz
		err = json.NewDecoder(resp.Body).Decode(&j)
		resp.Body.Close()
		switch {
		case err != nil:
			return fmt.Errorf("%s: /jsz: %w", n.Name, err)
		case j.Meta == nil || j.Meta.Leader == "":
			return fmt.Errorf("%s: no meta leader", n.Name)
		case leader != "" && j.Meta.Leader != leader:
			return fmt.Errorf("%s: meta leader %s, another node says %s", n.Name, j.Meta.Leader, leader)
		case !running[j.Meta.Leader]:
			return fmt.Errorf("%s: meta leader %s is not running", n.Name, j.Meta.Leader)
		}
		leader = j.Meta.Leader
		if n.Name != leader {
			continue // only the leader knows whether its followers are current
		}
		current := map[string]bool{n.Name: true}
		for _, r := range j.Meta.Replicas {
			if r.Current && !r.Offline {
				current[r.Name] = true
			}
		}
		for name := range running {
			if !current[name] {
				return fmt.Errorf("meta leader %s: peer %s not current", leader, name)
			}
		}
	}
	if leader == "" {
		return fmt.Errorf("no node running")
	}
	return nil
}

// Connect is a client connection to the cluster (every node as a seed),
// closed when the test ends.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamLeader is the index of the node leading stream, once it has a
// leader and every replica is current (or ctx ends).
func (c *Cluster) StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	var last error
	for {
		info, err := func() (*jetstream.StreamInfo, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return nil, err
			}
			return s.Info(ctx)
		}()
		switch {
		case err != nil:
			last = err
		case info.Cluster == nil || info.Cluster.Leader == "":
			last = fmt.Errorf("stream %s has no leader", stream)
		default:
			ok := true
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					ok, last = false, fmt.Errorf("stream %s: replica %s not current", stream, r.Name)
				}
			}
			if i := c.Index(info.Cluster.Leader); ok && i >= 0 {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // a flapping node must not eat the test's memory
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
