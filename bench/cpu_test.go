package main

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		line string
		want time.Duration
		ok   bool
	}{
		// utime 250, stime 37 (fields 14 and 15)
		{"4242 (gateway) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 37 0 0 20 0 12 0 100 0 0", 2870 * time.Millisecond, true},
		// a command name with spaces and a ')' of its own
		{"7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0", 70 * time.Millisecond, true},
		{"7 (gateway S 1", 0, false},
		{"7 (gateway) S 1 7 7", 0, false},
		{"7 (gateway) S 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, false},
	} {
		got, ok := parseStatCPU(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestProcCPUGrows: this process's CPU time, read from /proc, grows while
// it works.
func TestProcCPUGrows(t *testing.T) {
	t0, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	for range 1000 { // up to ~10 s of CPU: far more than one clock tick
		for range 20000 {
			sum = sha256.Sum256(sum[:])
		}
		t1, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if t1 > t0 {
			return
		}
	}
	t.Fatalf("CPU time stayed at %v while hashing", t0)
}
