// Package redisclustertest runs a Redis Cluster of real redis-server processes
// on loopback for tests: six nodes by default (three primaries, each with
// one replica), made with `redis-cli --cluster create`, each on its own free
// client and bus port (`cluster-port`) with its own directory for
// nodes.conf, and no persistence. It can fail a primary over, gracefully
// (CLUSTER FAILOVER on its replica) or as a crash (SIGKILL, then the
// replica's election), and start a killed node again (it rejoins as a
// replica of its successor).
//
// redis-server and redis-cli come from PATH; a test whose cluster does not
// come up fails, nothing skips. The package owns the processes it starts
// (killed when the test ends, their logs printed if it failed) and nothing
// else; it imports stacktest for ports only, and no Caddy.
package redisclustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// Options of a cluster.
type Options struct {
	// Primaries is the number of primaries (each gets one replica).
	// Default: 3 (six nodes), the smallest cluster redis-cli creates.
	Primaries int
	// NodeTimeout is cluster-node-timeout: how long a primary must be
	// unreachable before the others declare it failed and its replica is
	// elected. Default: 1s (production default: 15s).
	NodeTimeout time.Duration
}

// Node is one redis-server of a Cluster.
type Node struct {
	Port    int // client port on 127.0.0.1
	BusPort int // cluster bus port
	Dir     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	logs   *syncBuffer
	client *redis.Client // a plain connection to this node only
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

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

// Logs are what the node wrote so far (all its lives).
func (n *Node) Logs() string { return n.logs.String() }

// Client is a plain (non-cluster) client of this node alone.
func (n *Node) Client() *redis.Client { return n.client }

// Cluster is a running Redis Cluster.
type Cluster struct {
	Nodes []*Node
	opts  Options
	t     testing.TB
}

// Start starts the nodes, creates the cluster and waits until every node
// says cluster_state:ok, knows every other node, and every replica is in
// sync with its primary.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("redisclustertest: %s not found (make test installs it): %v", bin, err)
		}
	}
	if opts.Primaries == 0 {
		opts.Primaries = 3
	}
	if opts.Primaries < 3 {
		t.Fatal("redisclustertest: redis-cli creates clusters of at least 3 primaries")
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = time.Second
	}
	c := &Cluster{opts: opts, t: t}
	root := t.TempDir()
	for i := range 2 * opts.Primaries {
		n := &Node{Port: stacktest.FreePort(t), BusPort: stacktest.FreePort(t),
			Dir: filepath.Join(root, "n"+strconv.Itoa(i)), logs: &syncBuffer{}}
		n.client = redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1, DialTimeout: time.Second,
			ReadTimeout: 2 * time.Second, PoolSize: 2})
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.Nodes {
			c.kill(n)
			_ = n.client.Close()
		}
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("redis-server %s logs (tail):\n%s", n.Addr(), tail(n.Logs(), 30))
			}
		}
	})
	for _, n := range c.Nodes {
		c.start(n)
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.Nodes {
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redisclustertest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("redisclustertest: cluster not ready: %v", err)
	}
	return c
}

func (c *Cluster) start(n *Node) {
	c.t.Helper()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(n.BusPort),
		"--cluster-config-file", filepath.Join(n.Dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
		// the topology stays as the test made it: a restarted node does not
		// move to the primary left without a replica
		"--cluster-allow-replica-migration", "no",
		"--dir", n.Dir, "--save", "", "--appendonly", "no",
		// a replica syncs at once (the default waits 5 s for more replicas)
		"--repl-diskless-sync-delay", "0")
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("redisclustertest: start %s: %v", n.Addr(), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := n.client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !n.Running() {
			c.t.Fatalf("redisclustertest: %s did not answer: %v\n%s", n.Addr(), err, tail(n.Logs(), 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) kill(n *Node) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Addrs are every node's host:port.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, n := range c.Nodes {
		a = append(a, n.Addr())
	}
	return a
}

// Seeds is the comma-separated address list the erp app's `redis` option
// takes for a cluster.
func (c *Cluster) Seeds() string { return strings.Join(c.Addrs(), ",") }

// Client is a cluster client of the test's own (every node a seed),
// closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// NodeAt is the node listening on addr (host:port), or nil.
func (c *Cluster) NodeAt(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Info is one section of INFO of node n as a map.
func (n *Node) Info(ctx context.Context, section string) (map[string]string, error) {
	s, err := n.client.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// clusterInfo is CLUSTER INFO of node n as a map.
func (n *Node) clusterInfo(ctx context.Context) (map[string]string, error) {
	s, err := n.client.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// Primary is the node serving slot's primary as node n sees it.
func (c *Cluster) primaryFor(ctx context.Context, n *Node, slot int) (*Node, error) {
	slots, err := n.client.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, s := range slots {
		if slot >= s.Start && slot <= s.End && len(s.Nodes) > 0 {
			if p := c.NodeAt(s.Nodes[0].Addr); p != nil {
				return p, nil
			}
			return nil, fmt.Errorf("slot %d: unknown primary %s", slot, s.Nodes[0].Addr)
		}
	}
	return nil, fmt.Errorf("slot %d: not served", slot)
}

// PrimaryOf is the node that serves key now (its primary), as the running
// nodes agree.
func (c *Cluster) PrimaryOf(key string) *Node {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := c.anyRunning().client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("redisclustertest: CLUSTER KEYSLOT: %v", err)
	}
	p, err := c.primaryFor(ctx, c.anyRunning(), int(slot))
	if err != nil {
		c.t.Fatalf("redisclustertest: %v", err)
	}
	return p
}

// ReplicaOf is a running replica of primary p (in sync with it), or nil.
func (c *Cluster) ReplicaOf(p *Node) *Node {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if n == p || !n.Running() {
			continue
		}
		info, err := n.Info(ctx, "replication")
		if err == nil && info["role"] == "slave" && info["master_port"] == strconv.Itoa(p.Port) {
			return n
		}
	}
	return nil
}

func (c *Cluster) anyRunning() *Node {
	for _, n := range c.Nodes {
		if n.Running() {
			return n
		}
	}
	c.t.Fatal("redisclustertest: no node running")
	return nil
}

// Failover is a graceful failover of key's primary: CLUSTER FAILOVER on its
// replica, which takes over once it has the primary's last write. It
// returns the old primary and the new one, after the cluster is healthy
// again.
func (c *Cluster) Failover(key string) (old, promoted *Node) {
	c.t.Helper()
	old = c.PrimaryOf(key)
	promoted = c.ReplicaOf(old)
	if promoted == nil {
		c.t.Fatalf("redisclustertest: %s has no replica", old.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := promoted.client.ClusterFailover(ctx).Err(); err != nil {
		c.t.Fatalf("redisclustertest: CLUSTER FAILOVER on %s: %v", promoted.Addr(), err)
	}
	if err := c.waitPrimary(ctx, key, promoted); err != nil {
		c.t.Fatalf("redisclustertest: failover of %s to %s: %v", old.Addr(), promoted.Addr(), err)
	}
	return old, promoted
}

// Replicated waits until a replica of key's primary has every write the
// primary had when it was called (its replication offset), so that a
// crash next loses nothing. Replication is asynchronous: without it, a
// test that crashes a primary right after writing may measure the loss of
// the last writes instead of what it means to. (WAIT would not do: it
// waits for the writes of its own connection, and the test's writes came
// through another.)
func (c *Cluster) Replicated(key string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := c.PrimaryOf(key)
	info, err := p.Info(ctx, "replication")
	if err != nil {
		c.t.Fatalf("redisclustertest: INFO of %s: %v", p.Addr(), err)
	}
	want, _ := strconv.ParseInt(info["master_repl_offset"], 10, 64)
	for {
		info, err = p.Info(ctx, "replication")
		if err == nil {
			for k, v := range info { // slave0:ip=…,port=…,state=online,offset=N,lag=…
				if !strings.HasPrefix(k, "slave") || !strings.Contains(v, "state=online") {
					continue
				}
				for f := range strings.SplitSeq(v, ",") {
					if o, ok := strings.CutPrefix(f, "offset="); ok {
						if n, _ := strconv.ParseInt(o, 10, 64); n >= want {
							return
						}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("redisclustertest: no replica of %s reached offset %d: %v", p.Addr(), want, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// KillPrimary crashes key's primary (SIGKILL) and waits until its replica
// has been elected and every running node is healthy. It returns the
// killed node and its successor; Restart(killed) brings it back as a
// replica.
func (c *Cluster) KillPrimary(key string) (killed, promoted *Node) {
	c.t.Helper()
	killed = c.PrimaryOf(key)
	promoted = c.ReplicaOf(killed)
	if promoted == nil {
		c.t.Fatalf("redisclustertest: %s has no replica", killed.Addr())
	}
	c.kill(killed)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+20*c.opts.NodeTimeout)
	defer cancel()
	if err := c.waitPrimary(ctx, key, promoted); err != nil {
		c.t.Fatalf("redisclustertest: %s did not take over from %s: %v", promoted.Addr(), killed.Addr(), err)
	}
	return killed, promoted
}

// Restart starts a killed node again on its ports and nodes.conf, and
// waits until the cluster is healthy (the node back, as a replica in sync
// when it was failed over).
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	c.kill(n)
	c.start(n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		c.t.Fatalf("redisclustertest: %s not back: %v", n.Addr(), err)
	}
}

// waitPrimary waits until want serves key's slot as every running node
// sees it, and the cluster is healthy.
func (c *Cluster) waitPrimary(ctx context.Context, key string, want *Node) error {
	slot, err := want.client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return err
	}
	var last error
	for {
		last = nil
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			p, err := c.primaryFor(ctx, n, int(slot))
			if err != nil {
				last = fmt.Errorf("%s: %w", n.Addr(), err)
				break
			}
			if p != want {
				last = fmt.Errorf("%s says %s serves slot %d", n.Addr(), p.Addr(), slot)
				break
			}
		}
		if last == nil {
			if last = c.healthy(ctx); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitHealthy waits until every running node says cluster_state:ok and
// knows every node, and every running replica's link to its primary is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	var first, firstAddr string
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		ci, err := n.clusterInfo(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if ci["cluster_state"] != "ok" {
			return fmt.Errorf("%s: cluster_state:%s", n.Addr(), ci["cluster_state"])
		}
		if ci["cluster_known_nodes"] != strconv.Itoa(len(c.Nodes)) {
			return fmt.Errorf("%s: knows %s nodes of %d", n.Addr(), ci["cluster_known_nodes"], len(c.Nodes))
		}
		if ci["cluster_slots_ok"] != "16384" {
			return fmt.Errorf("%s: %s slots ok", n.Addr(), ci["cluster_slots_ok"])
		}
		info, err := n.Info(ctx, "replication")
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if info["role"] == "slave" && info["master_link_status"] != "up" {
			return fmt.Errorf("%s: replica link %s", n.Addr(), info["master_link_status"])
		}
		// every node sees the same primaries serving the same slots, and a
		// node that is a primary by its own account serves some: a node
		// restarted from its nodes.conf first believes it still serves
		// its old slots (and takes writes for them) or is a primary
		// without slots, until the gossip makes it its successor's
		// replica
		view, mine, err := slotView(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if first == "" {
			first = view
		} else if view != first {
			return fmt.Errorf("%s: its view of the slots differs from %s's", n.Addr(), firstAddr)
		}
		if firstAddr == "" {
			firstAddr = n.Addr()
		}
		if info["role"] == "master" && !mine {
			return fmt.Errorf("%s: a primary without slots", n.Addr())
		}
	}
	return nil
}

// slotView is n's CLUSTER NODES reduced to who serves what: a line
// "id slots…" per primary that serves slots, sorted; mine says whether n
// itself is among them.
func slotView(ctx context.Context, n *Node) (view string, mine bool, err error) {
	nodes, err := n.client.ClusterNodes(ctx).Result()
	if err != nil {
		return "", false, err
	}
	var lines []string
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) <= 8 || !strings.Contains(f[2], "master") {
			continue // fields: id addr flags master ping pong epoch link slots…
		}
		lines = append(lines, f[0]+" "+strings.Join(f[8:], " "))
		mine = mine || strings.Contains(f[2], "myself")
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), mine, nil
}

// ForEachPrimary calls fn with a plain client of every running primary.
func (c *Cluster) ForEachPrimary(ctx context.Context, fn func(n *Node) error) error {
	var errs []error
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := n.Info(ctx, "replication")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if info["role"] == "master" {
			errs = append(errs, fn(n))
		}
	}
	return errors.Join(errs...)
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

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
