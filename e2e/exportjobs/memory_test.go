package exportjobs

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB is process pid's resident set (/proc/PID/status VmRSS), in KiB.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// sampleRSS samples process pid's RSS every 20 ms until the returned
// func is called, which returns the RSS at the start and the peak, in KiB.
func sampleRSS(t *testing.T, pid int) func() (before, peak int64) {
	before := rssKiB(t, pid)
	var top atomic.Int64
	top.Store(before)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
				if err != nil {
					continue
				}
				for _, line := range strings.Split(string(f), "\n") {
					if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
						if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil && n > top.Load() {
							top.Store(n)
						}
					}
				}
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return before, top.Load()
	}
}
