package faultproxy_test

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/faultproxy"
)

// echoServer answers each line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func dialAndEcho(t *testing.T, addr, msg string) (net.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	got, err := roundTrip(c, msg)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if got != msg+"\n" {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	return c, nil
}

func TestCutRestore(t *testing.T) {
	t.Parallel()
	p := faultproxy.Start(t, echoServer(t))

	live, err := dialAndEcho(t, p.Addr(), "before")
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	defer live.Close()

	p.Cut()
	if _, err := roundTrip(live, "after cut"); err == nil {
		t.Fatal("a live connection still works after Cut")
	}
	if c, err := dialAndEcho(t, p.Addr(), "new while cut"); err == nil {
		_ = c.Close()
		t.Fatal("a new connection works while cut")
	}

	p.Restore()
	c, err := dialAndEcho(t, p.Addr(), "restored")
	if err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	_ = c.Close()

	p.Close()
	p.Close() // harmless twice
	if c, err := dialAndEcho(t, p.Addr(), "closed"); err == nil {
		_ = c.Close()
		t.Fatal("a connection works after Close")
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	p := faultproxy.Start(t, echoServer(t))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				switch (i + j) % 4 {
				case 0:
					p.Cut()
				case 1:
					p.Restore()
				default:
					if c, err := dialAndEcho(t, p.Addr(), "x"); err == nil {
						_ = c.Close()
					}
				}
			}
		}(i)
	}
	wg.Wait()
	p.Restore()
	c, err := dialAndEcho(t, p.Addr(), "end")
	if err != nil {
		t.Fatalf("after concurrent use and Restore: %v", err)
	}
	_ = c.Close()
}
