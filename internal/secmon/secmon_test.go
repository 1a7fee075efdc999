package secmon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/secmon"
	"github.com/erpgate/erpgate/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type pub struct {
	mu  sync.Mutex
	evs []*events.Event
}

func (p *pub) Publish(ev *events.Event) bool {
	p.mu.Lock()
	p.evs = append(p.evs, ev)
	p.mu.Unlock()
	return true
}

func (p *pub) findings(t *testing.T, rule string) []secmon.Finding {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []secmon.Finding
	for _, ev := range p.evs {
		if ev.Type != "erp.security."+rule {
			continue
		}
		var f secmon.Finding
		if err := json.Unmarshal(ev.Data, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

type actor struct {
	mu      sync.Mutex
	locked  []string
	revoked []string
}

func (a *actor) LockAccount(_ context.Context, user, _ string) error {
	a.mu.Lock()
	a.locked = append(a.locked, user)
	a.mu.Unlock()
	return nil
}

func (a *actor) UserCompanies(_ context.Context, user string) ([]string, error) {
	switch user {
	case "user-1":
		return []string{"acme", "globex"}, nil
	case "user-3":
		return []string{"acme"}, nil
	}
	return nil, nil
}

func (a *actor) RevokeFamily(_ context.Context, _, session string) error {
	a.mu.Lock()
	a.revoked = append(a.revoked, session)
	a.mu.Unlock()
	return nil
}

type fixture struct {
	m     *secmon.Monitor
	clock *clock
	pub   *pub
	actor *actor
	n     int
}

// stores runs f against the memory store and the Redis store.
func stores(t *testing.T, f func(t *testing.T, newStore func() secmon.Store)) {
	t.Run("memory", func(t *testing.T) { f(t, func() secmon.Store { return secmon.NewMemory() }) })
	t.Run("redis", func(t *testing.T) {
		c, prefix := testenv.RedisClient(t)
		i := 0
		f(t, func() secmon.Store { i++; return &secmon.Redis{Client: c, Prefix: fmt.Sprintf("%s%d:", prefix, i)} })
	})
}

func newFixture(t *testing.T, store secmon.Store, rules secmon.Rules) *fixture {
	t.Helper()
	fx := &fixture{clock: &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}, pub: &pub{}, actor: &actor{}}
	fx.m = &secmon.Monitor{Store: store, Publisher: fx.pub, Actor: fx.actor, Source: "/erpgate/test", Now: fx.clock.Now}
	fx.m.Blocklist = secmon.NewBlocklist(nil, "", fx.clock.Now, nil)
	merged, err := secmon.Merge(rules)
	if err != nil {
		t.Fatal(err)
	}
	fx.m.SetRules(merged)
	return fx
}

func (fx *fixture) send(t *testing.T, typ, company, subject string, d secmon.AuthData) {
	t.Helper()
	fx.n++
	ev, err := events.New(events.SourceAuthsvc, typ, company, subject, d)
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = fmt.Sprintf("audit-0-%d", fx.n)
	if err := fx.m.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func failed(user, email, ip string) secmon.AuthData {
	return secmon.AuthData{ActorID: user, IP: ip, UserAgent: "curl/8", Details: map[string]string{"email": email, "reason": "bad_password"}}
}

func TestPasswordGuessingPerAddress(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), secmon.Rules{secmon.RulePasswordGuessing: {Threshold: 5, AccountThreshold: 1000, Window: time.Minute}})
		for i := range 4 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("", fmt.Sprintf("u%d@x.test", i%2), "203.0.113.7"))
			fx.clock.Add(time.Second)
		}
		if got := fx.pub.findings(t, secmon.RulePasswordGuessing); len(got) != 0 {
			t.Fatalf("fired below the threshold: %+v", got)
		}
		fx.send(t, secmon.TypeLoginThrottled, "", "", failed("", "u0@x.test", "203.0.113.7"))
		got := fx.pub.findings(t, secmon.RulePasswordGuessing)
		if len(got) != 1 || got[0].Count != 5 || got[0].IP != "203.0.113.7" || got[0].Scope != "address" || got[0].Severity != "high" || got[0].Action != "block_ip" || got[0].Window != "1m0s" {
			t.Fatalf("findings = %+v", got)
		}
		if _, blocked := fx.m.Blocklist.BlockedString("203.0.113.7"); !blocked {
			t.Fatal("the address is not blocked")
		}
		if _, blocked := fx.m.Blocklist.BlockedString("203.0.113.8"); blocked {
			t.Fatal("another address is blocked")
		}
		// More failures in the same window: no second event.
		fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "u0@x.test", "203.0.113.7"))
		if got := fx.pub.findings(t, secmon.RulePasswordGuessing); len(got) != 1 {
			t.Fatalf("fired again in the window: %d", len(got))
		}
		// The block ends after its default 15 minutes.
		fx.clock.Add(15 * time.Minute)
		if _, blocked := fx.m.Blocklist.BlockedString("203.0.113.7"); blocked {
			t.Fatal("the block did not expire")
		}
		// The window slid past the old failures: 4 new ones don't fire.
		for range 4 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "u0@x.test", "203.0.113.7"))
		}
		if got := fx.pub.findings(t, secmon.RulePasswordGuessing); len(got) != 1 {
			t.Fatalf("old failures still counted: %d findings", len(got))
		}
		fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "u0@x.test", "203.0.113.7"))
		if got := fx.pub.findings(t, secmon.RulePasswordGuessing); len(got) != 2 {
			t.Fatalf("a new burst after the window did not fire: %d findings", len(got))
		}
	})
}

func TestPasswordGuessingPerAccountLocks(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), secmon.Rules{secmon.RulePasswordGuessing: {Threshold: 1000, AccountThreshold: 3, Window: time.Minute,
			Actions: []secmon.Action{{Kind: secmon.ActionLockAccount}, {Kind: secmon.ActionBlockIP, Duration: time.Minute}}}})
		for i := range 3 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("user-1", "a@x.test", fmt.Sprintf("198.51.100.%d", i+1)))
		}
		// One finding, in each of the account's companies.
		got := fx.pub.findings(t, secmon.RulePasswordGuessing)
		if len(got) != 2 || got[0] != got[1] || got[0].Scope != "account" || got[0].UserID != "user-1" || got[0].Action != "lock_account" {
			t.Fatalf("findings = %+v", got)
		}
		if fx.pub.evs[0].CompanyID != "acme" || fx.pub.evs[1].CompanyID != "globex" {
			t.Fatalf("companies %q %q", fx.pub.evs[0].CompanyID, fx.pub.evs[1].CompanyID)
		}
		if len(fx.actor.locked) != 1 || fx.actor.locked[0] != "user-1" {
			t.Fatalf("locked = %v", fx.actor.locked)
		}
		if fx.m.Blocklist.Len() != 0 {
			t.Fatal("an account finding blocked an address")
		}
		// Unknown accounts count too (by the email tried), but lock nobody.
		for range 3 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "ghost@x.test", "198.51.100.9"))
		}
		if got := fx.pub.findings(t, secmon.RulePasswordGuessing); len(got) != 3 || got[2].UserID != "" || fx.pub.evs[2].CompanyID != "" {
			t.Fatalf("findings = %+v", got)
		}
		if len(fx.actor.locked) != 1 {
			t.Fatalf("locked = %v", fx.actor.locked)
		}
	})
}

func TestCredentialStuffing(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), secmon.Rules{
			secmon.RulePasswordGuessing:   {Off: true},
			secmon.RuleCredentialStuffing: {Threshold: 4, Window: time.Minute}})
		// The same account again and again is not stuffing.
		for range 10 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("", "same@x.test", "192.0.2.1"))
		}
		if got := fx.pub.findings(t, secmon.RuleCredentialStuffing); len(got) != 0 {
			t.Fatalf("fired on one account: %+v", got)
		}
		for i := range 3 {
			fx.send(t, secmon.TypeLoginFailed, "", "", failed("", fmt.Sprintf("v%d@x.test", i), "192.0.2.1"))
		}
		got := fx.pub.findings(t, secmon.RuleCredentialStuffing)
		if len(got) != 1 || got[0].Count != 4 || got[0].IP != "192.0.2.1" || got[0].Action != "block_ip" {
			t.Fatalf("findings = %+v", got)
		}
		if fx.pub.findings(t, secmon.RulePasswordGuessing) != nil {
			t.Fatal("a rule that is off fired")
		}
	})
}

func TestRefreshTokenReuse(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), nil)
		d := secmon.AuthData{ActorID: "user-2", SubjectID: "sess-9", IP: "192.0.2.4"}
		fx.send(t, secmon.TypeTokenReuse, "acme", "sess-9", d)
		fx.n-- // the same event redelivered
		fx.send(t, secmon.TypeTokenReuse, "acme", "sess-9", d)
		got := fx.pub.findings(t, secmon.RuleRefreshTokenReuse)
		if len(got) != 1 || got[0].UserID != "user-2" || got[0].Action != "revoke_family" || got[0].Severity != "high" {
			t.Fatalf("findings = %+v", got)
		}
		if fx.pub.evs[0].CompanyID != "acme" {
			t.Fatalf("company = %q, want the session's", fx.pub.evs[0].CompanyID)
		}
		if len(fx.actor.revoked) != 1 || fx.actor.revoked[0] != "sess-9" {
			t.Fatalf("revoked = %v", fx.actor.revoked)
		}
	})
}

func TestNewDeviceAndNetwork(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), secmon.Rules{secmon.RuleNewNetwork: {Window: time.Hour}})
		ok := func(ua, ip string) {
			fx.send(t, secmon.TypeLoginSucceeded, "", "", secmon.AuthData{ActorID: "user-3", IP: ip, UserAgent: ua})
		}
		ok("Firefox", "192.0.2.10") // the first login ever: nothing to compare with
		ok("Firefox", "192.0.2.99") // same /24
		if n := len(fx.pub.evs); n != 0 {
			t.Fatalf("%d events for known device and network", n)
		}
		ok("Safari", "192.0.2.11")
		if got := fx.pub.findings(t, secmon.RuleNewDevice); len(got) != 1 || got[0].UserID != "user-3" || got[0].Severity != "low" {
			t.Fatalf("new_device = %+v", got)
		}
		ok("Safari", "198.51.100.1")
		if got := fx.pub.findings(t, secmon.RuleNewNetwork); len(got) != 1 || got[0].IP != "198.51.100.1" || got[0].Severity != "medium" {
			t.Fatalf("new_network = %+v", got)
		}
		ok("Safari", "2001:db8:1:2::5")
		ok("Safari", "2001:db8:1:2::6") // same /64
		if got := fx.pub.findings(t, secmon.RuleNewNetwork); len(got) != 2 {
			t.Fatalf("new_network for IPv6 = %d", len(got))
		}
		// A network not seen for longer than the window is new again.
		fx.clock.Add(2 * time.Hour)
		ok("Safari", "192.0.2.10")
		if got := fx.pub.findings(t, secmon.RuleNewNetwork); len(got) != 2 {
			t.Fatalf("after the window the set is empty: the login is a first one again, got %d", len(got))
		}
		ok("Safari", "203.0.113.50")
		if got := fx.pub.findings(t, secmon.RuleNewNetwork); len(got) != 3 {
			t.Fatalf("new_network after the window = %d", len(got))
		}
	})
}

func TestAPIKeyNewNetwork(t *testing.T) {
	stores(t, func(t *testing.T, newStore func() secmon.Store) {
		fx := newFixture(t, newStore(), nil)
		used := func(ip string) {
			fx.send(t, secmon.TypeAPIKeyUsed, "acme", "key-1", secmon.AuthData{IP: ip})
		}
		used("192.0.2.1")
		used("192.0.2.2")
		used("198.51.100.3")
		got := fx.pub.findings(t, secmon.RuleAPIKeyNewNetwork)
		if len(got) != 1 || got[0].APIKeyID != "key-1" || got[0].IP != "198.51.100.3" {
			t.Fatalf("findings = %+v", got)
		}
	})
}

func TestRulesValidate(t *testing.T) {
	for name, rs := range map[string]secmon.Rules{
		"unknown rule":         {"nope": {}},
		"bad severity":         {secmon.RuleNewDevice: {Severity: "huge"}},
		"revoke on other rule": {secmon.RuleNewDevice: {Actions: []secmon.Action{{Kind: secmon.ActionRevokeFamily}}}},
		"unknown action":       {secmon.RuleNewDevice: {Actions: []secmon.Action{{Kind: "explode"}}}},
		"lock without account": {secmon.RuleCredentialStuffing: {Actions: []secmon.Action{{Kind: secmon.ActionLockAccount}}}},
		"negative threshold":   {secmon.RulePasswordGuessing: {Threshold: -1}},
		"block far too long":   {secmon.RulePasswordGuessing: {Actions: []secmon.Action{{Kind: secmon.ActionBlockIP, Duration: 365 * 24 * time.Hour}}}},
	} {
		if _, err := secmon.Merge(rs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := secmon.Merge(nil); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

func TestBlocklistSharedThroughRedis(t *testing.T) {
	c, prefix := testenv.RedisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := secmon.NewBlocklist(c, prefix, nil, nil)
	b := secmon.NewBlocklist(c, prefix, nil, nil)
	go b.Run(ctx)
	ip := netip.MustParseAddr("203.0.113.77")
	// a block made before the listener subscribed is found by its resync,
	// one made after by the channel: either way b learns it.
	if _, err := a.Block(ctx, ip, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := b.Blocked(ip); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other instance did not learn the block")
		}
		time.Sleep(10 * time.Millisecond)
	}
	late := secmon.NewBlocklist(c, prefix, nil, nil)
	go late.Run(ctx)
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, ok := late.Blocked(ip); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an instance started later did not load the block")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Block(ctx, netip.MustParseAddr("127.0.0.1"), time.Minute); err == nil {
		t.Fatal("loopback blocked")
	}
}

func BenchmarkBlockedNone(b *testing.B) {
	bl := secmon.NewBlocklist(nil, "", nil, nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := bl.BlockedString("192.0.2.1"); ok {
				b.Fatal("blocked")
			}
		}
	})
}

func BenchmarkBlockedSome(b *testing.B) {
	bl := secmon.NewBlocklist(nil, "", nil, nil)
	for i := range 1000 {
		if _, err := bl.Block(context.Background(), netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := bl.BlockedString("192.0.2.1"); ok {
				b.Fatal("blocked")
			}
		}
	})
}

func TestNetSeen(t *testing.T) {
	s := secmon.NewNetSeen(time.Hour, 100)
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if !s.First("k1", "192.0.2.1", now) {
		t.Fatal("first use not first")
	}
	if s.First("k1", "192.0.2.200", now) || s.First("k1", "::ffff:192.0.2.3", now) {
		t.Fatal("same /24 again is first")
	}
	if !s.First("k2", "192.0.2.1", now) || !s.First("k1", "198.51.100.1", now) {
		t.Fatal("another key or network is not first")
	}
	if !s.First("k1", "2001:db8::1", now) || s.First("k1", "2001:db8::ffff", now) {
		t.Fatal("IPv6 /64")
	}
	if s.First("k1", "not-an-ip", now) || s.First("", "192.0.2.1", now) {
		t.Fatal("garbage is first")
	}
	if !s.First("k1", "192.0.2.1", now.Add(2*time.Hour)) {
		t.Fatal("a network not seen for the TTL is not first again")
	}
	for i := range 1000 { // bounded
		s.First(fmt.Sprintf("key-%d", i), "192.0.2.1", now)
	}
	if n := s.Len(); n > 100 {
		t.Fatalf("%d pairs kept, bound 100", n)
	}
}

// A flood on one memory window stays linear: each failure's add is O(1)
// amortised.
func TestMemoryWindowFlood(t *testing.T) {
	m := secmon.NewMemory()
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	var n int64
	for i := range 300_000 {
		var err error
		n, err = m.Window(context.Background(), "ip", fmt.Sprint(i), now.Add(time.Duration(i)*time.Millisecond), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 60_001 {
		t.Fatalf("count = %d, want the last minute's 60001", n)
	}
	m.Prune(now.Add(time.Hour))
	if m.Len() != 0 {
		t.Fatalf("%d keys after prune", m.Len())
	}
}

func BenchmarkMonitorFailedLoginMemory(b *testing.B) {
	m := &secmon.Monitor{Store: secmon.NewMemory(), Publisher: &pub{}, Blocklist: secmon.NewBlocklist(nil, "", nil, nil)}
	m.SetRules(secmon.DefaultRules())
	d, _ := json.Marshal(failed("", "x@y.test", "192.0.2.1"))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev := &events.Event{ID: fmt.Sprint(i), Type: secmon.TypeLoginFailed, Data: d}
		if err := m.Handle(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNetSeenKnown(b *testing.B) {
	s := secmon.NewNetSeen(time.Hour, 100_000)
	now := time.Now()
	s.First("key-1", "192.0.2.1", now)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if s.First("key-1", "192.0.2.1", now) {
			b.Fatal("first")
		}
	}
}
