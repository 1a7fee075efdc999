package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The export mode (`-only export`) measures the memory of a streamed
// export of the demo's computed journal (1,000,000 lines per company)
// through the real binary on Caddyfile.example: for NDJSON and CSV it
// streams GET /api/v1/journal/export, samples the gateway process's RSS
// (/proc/PID/status VmRSS) every 20 ms, and prints rows, bytes, rows/s and
// RSS before, peak and growth. The demo backend runs in the same process,
// so its pages count too. The plans' rate and quota are raised in this
// run's copy of the Caddyfile (an export of a million rows is 5,000 page
// requests).
//
//	go run ./bench -gateway bin/gateway -only export

// exportRSSLimitMiB is the bound the issue sets for the RSS growth.
const exportRSSLimitMiB = 64

func runExport(gateway string) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		return fmt.Errorf("run from the repository's root: %w", err)
	}
	text := string(cfg)
	for _, plan := range []string{"plan free 60/m 10000", "plan standard 6000/m 1000000"} {
		if !strings.Contains(text, plan) {
			return fmt.Errorf("Caddyfile.example has no %q line to raise", plan)
		}
		name := strings.Fields(plan)[1]
		text = strings.Replace(text, plan, "plan "+name+" 1000000/m 100000000", 1)
	}
	dir, err := os.MkdirTemp("", "erpgate-bench-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	edge, admin, demo := freePort(), freePort(), freePort()
	os.Setenv("ERP_LISTEN", "127.0.0.1:"+strconv.Itoa(edge))
	os.Setenv("ERP_ADMIN", "127.0.0.1:"+strconv.Itoa(admin))
	os.Setenv("ERP_DEMO_LISTEN", "127.0.0.1:"+strconv.Itoa(demo))
	for _, k := range []string{"ERP_POSTGRES_URL", "ERP_REDIS_URL", "ERP_NATS_URL"} {
		os.Unsetenv(k)
	}
	stop, err := startGateway(gateway, dir, "gateway-export", text, edge)
	if err != nil {
		return err
	}
	defer stop()
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "gateway-export.log"))
		return tail(string(b), 30)
	}
	if err := waitPort(edge); err != nil {
		return fmt.Errorf("gateway not ready: %w\n%s", err, logs())
	}
	token, err := loginRetry(edge)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, logs())
	}
	pid := pids[edge]
	rest, err := rssKiB(pid)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/api/v1/journal/export", edge)
	// warm-up: one batch in each format, so that "before" is the process
	// at work, not at rest
	for _, f := range []string{"ndjson", "csv"} {
		if _, _, err := streamExport(base+"?format="+f+"&filter=batch:eq:B01", token); err != nil {
			return fmt.Errorf("warm-up: %w\n%s", err, logs())
		}
	}
	fmt.Printf("erpgate bench export: %s, 1,000,000-row journal through the edge (Caddyfile.example, demo in process)\n", gateway)
	fmt.Printf("RSS at rest (signed in, before a 50,000-row warm-up export per format): %.1fM\n", float64(rest)/1024)
	fmt.Printf("%-7s %10s %12s %8s %10s %10s %10s %10s %10s\n", "format", "rows", "bytes", "seconds", "rows/s", "RSS before", "RSS peak", "growth", "from rest")
	over := false
	for _, f := range []string{"ndjson", "csv"} {
		before, err := rssKiB(pid)
		if err != nil {
			return err
		}
		var peak atomic.Int64
		peak.Store(before)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if v, err := rssKiB(pid); err == nil && v > peak.Load() {
						peak.Store(v)
					}
				}
			}
		}()
		start := time.Now()
		lines, n, err := streamExport(base+"?format="+f, token)
		took := time.Since(start)
		close(done)
		wg.Wait()
		if err != nil {
			return fmt.Errorf("%s export: %w\n%s", f, err, logs())
		}
		rows := lines
		if f == "csv" {
			rows-- // the header line
		}
		if rows != 1_000_000 {
			return fmt.Errorf("%s export: %d rows, want 1000000\n%s", f, rows, logs())
		}
		growth := peak.Load() - before
		over = over || growth > exportRSSLimitMiB<<10 || peak.Load()-rest > exportRSSLimitMiB<<10
		fmt.Printf("%-7s %10d %12d %8.1f %10.0f %9.1fM %9.1fM %9.1fM %9.1fM\n", f, rows, n, took.Seconds(), float64(rows)/took.Seconds(),
			float64(before)/1024, float64(peak.Load())/1024, float64(growth)/1024, float64(peak.Load()-rest)/1024)
	}
	if over {
		return fmt.Errorf("RSS grew by more than %d MiB", exportRSSLimitMiB)
	}
	fmt.Printf("RSS growth within %d MiB for both formats\n", exportRSSLimitMiB)
	return nil
}

// loginRetry signs in, retrying while the auth service gets ready.
func loginRetry(port int) (string, error) {
	var err error
	for i := 0; i < 50; i++ {
		var tok string
		if tok, err = login(port); err == nil {
			return tok, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", err
}

// streamExport reads an export to its end, counting lines and bytes; a cut
// transfer (no final chunk) is an error.
func streamExport(url, token string) (lines, n int64, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	buf := make([]byte, 256<<10)
	for {
		k, rerr := resp.Body.Read(buf)
		n += int64(k)
		lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if errors.Is(rerr, io.EOF) {
			return lines, n, nil
		}
		if rerr != nil {
			return lines, n, rerr
		}
	}
}

// rssKiB is the resident set of process pid in KiB (/proc/PID/status VmRSS).
func rssKiB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
