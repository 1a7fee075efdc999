package webhooks

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// gcmSealer is AES-256-GCM with the kid as additional data, as the auth
// service's sealer (which this package can't import: authsvc imports it).
type gcmSealer struct{ aead cipher.AEAD }

func (g gcmSealer) Seal(kid string, plaintext []byte) []byte {
	nonce := make([]byte, g.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return g.aead.Seal(nonce, nonce, plaintext, []byte(kid))
}

func (g gcmSealer) Open(kid string, sealed []byte) ([]byte, error) {
	n := g.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return g.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
}

func testSealer(t testing.TB) Sealer {
	t.Helper()
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcmSealer{aead}
}

// newTestManager is a Manager on a memory store (cfg's zero fields
// defaulted) that is not delivering from a stream.
func newTestManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = NewMemory()
	}
	if cfg.Sealer == nil {
		cfg.Sealer = testSealer(t)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestBlockedAddr(t *testing.T) {
	t.Parallel()
	blocked := []string{"127.0.0.1", "127.5.6.7", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.1.1", "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.1",
		"239.255.255.250", "255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.0.170", "::", "::1", "fe80::1",
		"fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "::127.0.0.1", "fec0::1",
		"2001:db8::1"}
	allowed := []string{"93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"}
	for _, s := range blocked {
		if !BlockedAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s not blocked", s)
		}
	}
	for _, s := range allowed {
		if BlockedAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s blocked", s)
		}
	}
}

// flipResolver answers first on its first lookup and then on every later
// one: a rebinding DNS name.
type flipResolver struct {
	n           atomic.Int32
	first, then string
}

func (r *flipResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	ip := r.then
	if r.n.Add(1) == 1 {
		ip = r.first
	}
	return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
}

// countingListener is a loopback listener that counts the connections it
// accepts.
func countingListener(t *testing.T) (net.Listener, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln, &n
}

func TestDialerRefusesAtConnectTime(t *testing.T) {
	t.Parallel()
	ln, accepted := countingListener(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, target := range []string{"rebind.example:" + port, "127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port} {
		t.Run(target, func(t *testing.T) {
			r := &flipResolver{first: "127.0.0.1", then: "127.0.0.1"}
			d := newSafeDialer(false, r, 2*time.Second)
			c, err := d.DialContext(t.Context(), "tcp", target)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, errBlocked) || errorText(err) != "target address not allowed" {
				t.Fatalf("error %v (%q)", err, errorText(err))
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the listener accepted %d connections", n)
	}
	// allow_private: the same dial connects.
	d := newSafeDialer(true, &flipResolver{first: "127.0.0.1", then: "127.0.0.1"}, 2*time.Second)
	c, err := d.DialContext(t.Context(), "tcp", "rebind.example:"+port)
	if err != nil {
		t.Fatalf("allow_private: %v", err)
	}
	c.Close()
}

// A name that resolves to a public address when the endpoint is created and
// to loopback when it is delivered to (DNS rebinding) is refused at
// delivery: the receiver on loopback gets nothing.
func TestRebindingRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	r := &flipResolver{first: "93.184.216.34", then: "127.0.0.1"}
	m := newTestManager(t, Config{Resolver: r})
	u := "http://hooks.example:" + port + "/in"
	ep, _, err := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.invoices.*"}})
	if err != nil {
		t.Fatalf("create (the name resolved to a public address): %v", err)
	}
	d, err := m.Test(t.Context(), "acme", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusFailed || d.HTTPStatus != 0 || d.Error != "target address not allowed" {
		t.Fatalf("delivery %+v", d)
	}
	if hits.Load() != 0 {
		t.Fatal("the loopback receiver was reached")
	}
	if r.n.Load() < 2 {
		t.Fatal("the delivery did not resolve the name again")
	}
}

func TestCreateRefusesTargets(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Config{Resolver: &flipResolver{first: "10.0.0.7", then: "10.0.0.7"}})
	for _, u := range []string{
		"ftp://hooks.example/x", "file:///etc/passwd", "javascript:alert(1)", "gopher://x", "//hooks.example/x",
		"http://user:pw@hooks.example/x", "https://user@hooks.example/x", "http:///x", "http://", "hooks.example/x",
		"http://127.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x", "http://[::ffff:127.0.0.1]/x",
		"http://0.0.0.0/x", "http://100.64.1.1/x", "http://10.1.1.1/x", "http://[fe80::1]/x", "http://hooks.example/x#frag",
		"http://private.example/x", // resolves to 10.0.0.7
		"http://hooks.example:99999/x", "http://" + strings.Repeat("a", 2100) + ".example/",
	} {
		_, _, err := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.*"}})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "url" {
			t.Errorf("%.60s: %v", u, err)
		}
	}
	if l, _ := m.List(t.Context(), "acme"); len(l) != 0 {
		t.Fatalf("%d endpoints stored", len(l))
	}
	// Update checks a new URL the same way, and changes nothing when it refuses.
	pub := newTestManager(t, Config{Resolver: &flipResolver{first: "93.184.216.34", then: "93.184.216.34"}})
	good := "https://hooks.example/in"
	ep, _, err := pub.Create(t.Context(), "acme", EndpointInput{URL: &good, Events: []string{"erp.*"}})
	if err != nil {
		t.Fatal(err)
	}
	bad := "http://169.254.169.254/latest/meta-data/"
	var ve *ValidationError
	if _, err := pub.Update(t.Context(), "acme", ep.ID, EndpointInput{URL: &bad}); !errors.As(err, &ve) || ve.Field != "url" {
		t.Fatalf("update to the metadata address: %v", err)
	}
	if got, _ := pub.Get(t.Context(), "acme", ep.ID); got.URL != good {
		t.Fatalf("url after a refused update: %s", got.URL)
	}
	if _, err := pub.Update(t.Context(), "globex", ep.ID, EndpointInput{URL: &good}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another company's update: %v", err)
	}
}

func TestCreateChecksInput(t *testing.T) {
	t.Parallel()
	m := newTestManager(t, Config{AllowPrivate: true, MaxEndpoints: 2})
	u := "http://127.0.0.1:9/x"
	long := strings.Repeat("d", 501)
	many := make([]string, 33)
	for i := range many {
		many[i] = "erp.t" + strings.Repeat("x", i) + ".*"
	}
	for _, c := range []struct {
		name, field string
		in          EndpointInput
	}{
		{"no url", "url", EndpointInput{Events: []string{"erp.*"}}},
		{"no events", "events", EndpointInput{URL: &u}},
		{"empty events", "events", EndpointInput{URL: &u, Events: []string{}}},
		{"bad pattern", "events", EndpointInput{URL: &u, Events: []string{"erp..x"}}},
		{"pattern with >", "events", EndpointInput{URL: &u, Events: []string{"erp.>"}}},
		{"33 patterns", "events", EndpointInput{URL: &u, Events: many}},
		{"long description", "description", EndpointInput{URL: &u, Events: []string{"erp.*"}, Description: &long}},
	} {
		_, _, err := m.Create(t.Context(), "acme", c.in)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, _, err := m.Create(t.Context(), "", EndpointInput{URL: &u, Events: []string{"erp.*"}}); err == nil {
		t.Error("no company accepted")
	}
	for i := range 2 {
		if _, _, err := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.*", "erp.*"}}); err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
	}
	if _, _, err := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.*"}}); !errors.Is(err, ErrLimit) {
		t.Fatalf("third endpoint: %v", err)
	}
	if _, _, err := m.Create(t.Context(), "globex", EndpointInput{URL: &u, Events: []string{"erp.*"}}); err != nil {
		t.Fatalf("another company's first endpoint: %v", err)
	}
	l, _ := m.List(t.Context(), "acme")
	if len(l[0].Events) != 1 {
		t.Fatalf("duplicate patterns kept: %v", l[0].Events)
	}
}

// Answers that are not a success: a redirect (not followed), a slow
// receiver (timeout), a huge answer (read to 64 KB, 1 KB kept).
func TestAttemptOutcomes(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("a", 1<<20)))
	})
	mux.HandleFunc("/binary", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte("bad\x00\xff\xfeinput"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	m := newTestManager(t, Config{AllowPrivate: true, Timeout: 500 * time.Millisecond})
	try := func(path string) Delivery {
		u := srv.URL + path
		ep, _, err := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.*"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := m.Test(t.Context(), "acme", ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := try("/redirect"); d.Status != StatusFailed || d.HTTPStatus != 307 || d.Error != "redirect not followed" {
		t.Errorf("redirect: %+v", d)
	}
	if elsewhere.Load() != 0 {
		t.Error("the redirect was followed")
	}
	if d := try("/slow"); d.Status != StatusFailed || d.HTTPStatus != 0 || d.Error != "timeout" {
		t.Errorf("slow: %+v", d)
	}
	if d := try("/huge"); d.Status != StatusSucceeded || len(d.Response) != 1024 {
		t.Errorf("huge: %s, response of %d bytes", d.Status, len(d.Response))
	}
	if d := try("/binary"); d.Status != StatusFailed || d.HTTPStatus != 400 || strings.Contains(d.Response, "\x00") || !strings.HasPrefix(d.Response, "bad") {
		t.Errorf("binary: %+v", d)
	}
	// Nothing listens: refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	u := "http://" + addr + "/x"
	ep, _, _ := m.Create(t.Context(), "acme", EndpointInput{URL: &u, Events: []string{"erp.*"}})
	if d, _ := m.Test(t.Context(), "acme", ep.ID); d.Error != "connection refused" {
		t.Errorf("closed port: %+v", d)
	}
}
