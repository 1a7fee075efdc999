// Command streams measures what idle event stream connections cost the
// edge: it starts the gateway (Caddyfile.example, embedded stores and
// NATS), logs the demo's alice in, opens N Server-Sent Events streams
// (`GET /api/v1/events/stream`) and reports the gateway's resident memory
// before and after (and per connection), then creates one invoice through
// the edge and reports how long until every stream received its
// `erp.invoices.created` (the hub's fan-out, end to end).
//
//	go build -o bin/gateway ./cmd/gateway
//	go run ./bench/streams -gateway bin/gateway -connections 10000
//
// It drives the built binary over HTTP and imports nothing of ours (no
// Caddy either). Each connection is one goroutine here reading a raw TCP
// connection, so the client's cost stays out of the gateway's figure. Both
// processes need a file limit above N (it raises its own soft limit to the
// hard one; the gateway inherits it).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	gateway := flag.String("gateway", "bin/gateway", "gateway binary")
	config := flag.String("config", "Caddyfile.example", "Caddyfile")
	n := flag.Int("connections", 10000, "idle SSE connections")
	listen := flag.String("listen", "127.0.0.1:18080", "the gateway's ERP_LISTEN")
	settle := flag.Duration("settle", 5*time.Second, "wait after opening them before measuring")
	flag.StringVar(&profile, "heap-profile", "", "write the gateway's heap profile with the connections open to this file (from the admin API's /debug/pprof/heap)")
	flag.Parse()
	if err := run(*gateway, *config, *listen, *n, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "streams:", err)
		os.Exit(1)
	}
}

var profile string

const admin = "127.0.0.1:12019"

func run(gateway, config, listen string, n int, settle time.Duration) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if lim.Cur < uint64(n)+256 {
			return fmt.Errorf("the file limit (%d) is below %d connections", lim.Cur, n)
		}
	}
	dir, err := os.MkdirTemp("", "erpgate-streams-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, err := filepath.Abs(config)
	if err != nil {
		return err
	}
	cmd := exec.Command(gateway, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"ERP_LISTEN="+listen, "ERP_ADMIN="+admin, "ERP_DEMO_LISTEN=127.0.0.1:19001",
		"ERP_POSTGRES_URL=", "ERP_REDIS_URL=", "ERP_NATS_URL=")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	base := "http://" + listen
	token, err := login(base)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(logs.String(), 20))
	}
	// one stream first: the hub is running, the code paths are warm
	warm, err := open(listen, token)
	if err != nil {
		return err
	}
	warm.Close()
	time.Sleep(time.Second)
	runtime.GC()
	before, err := rss(cmd.Process.Pid)
	if err != nil {
		return err
	}

	conns := make([]net.Conn, 0, n)
	var received atomic.Int64
	var wg sync.WaitGroup
	allGot := make(chan struct{})
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := open(listen, token)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReaderSize(c, 1024)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "event: erp.invoices.created") {
					if received.Add(1) == int64(n) {
						close(allGot)
					}
					return
				}
			}
		}()
	}
	opened := time.Since(start)
	time.Sleep(settle)
	after, err := rss(cmd.Process.Pid)
	if err != nil {
		return err
	}
	if profile != "" {
		if err := saveProfile(profile); err != nil {
			return err
		}
	}
	fmt.Printf("connections:            %d (opened in %s)\n", n, opened.Round(time.Millisecond))
	fmt.Printf("gateway RSS before:     %.1f MiB\n", float64(before)/(1<<20))
	fmt.Printf("gateway RSS with them:  %.1f MiB\n", float64(after)/(1<<20))
	fmt.Printf("per idle connection:    %.1f KiB\n", float64(after-before)/float64(n)/1024)

	began := time.Now()
	if err := createInvoice(base, token); err != nil {
		return err
	}
	select {
	case <-allGot:
		fmt.Printf("one event to all %d:   %s (POST /api/v2/invoices to the last stream's frame)\n", n, time.Since(began).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		fmt.Printf("one event: only %d of %d streams received it within 60s\n", received.Load(), n)
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return nil
}

// open sends the stream request on a new connection and reads the answer's
// head.
func open(addr, token string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	req := "GET /api/v1/events/stream?types=erp.invoices.* HTTP/1.1\r\nHost: " + addr +
		"\r\nAuthorization: Bearer " + token + "\r\nAccept: text/event-stream\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	// read up to the end of the head byte by byte: nothing of the body
	// may be left in a buffer the reader goroutine won't see
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			c.Close()
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		head = append(head, b[0])
		if len(head) > 8192 {
			c.Close()
			return nil, errors.New("answer head too long")
		}
	}
	_ = c.SetDeadline(time.Time{})
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
		c.Close()
		return nil, fmt.Errorf("answer: %s", bytes.SplitN(head, []byte("\r\n"), 2)[0])
	}
	return c, nil
}

func login(base string) (string, error) {
	var tok string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var err error
		tok, err = loginOnce(base)
		if err == nil {
			return tok, nil
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func loginOnce(base string) (string, error) {
	var login struct {
		Data struct {
			LoginToken string `json:"login_token"`
		} `json:"data"`
	}
	if err := post(base+"/api/v1/auth/login", "", `{"email":"alice@acme.test","password":"erpgate-demo"}`, &login); err != nil {
		return "", err
	}
	var sel struct {
		Data struct {
			Access string `json:"access_token"`
		} `json:"data"`
	}
	if err := post(base+"/api/v1/auth/select-company", "", `{"login_token":"`+login.Data.LoginToken+`","company_id":"acme"}`, &sel); err != nil {
		return "", err
	}
	return sel.Data.Access, nil
}

func createInvoice(base, token string) error {
	return post(base+"/api/v2/invoices", token, `{"customer_id":"cus_acme_001","total":{"amount":"1.00","currency":"EUR"}}`, nil)
}

func post(url, token, body string, out any) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func saveProfile(name string) error {
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Get("http://" + admin + "/debug/pprof/heap")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// rss is the process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
