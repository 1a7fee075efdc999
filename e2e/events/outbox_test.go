package events

// Auth and admin events through the transactional outbox (issue 15), in
// the running binary on Postgres and the external NATS: a login, a failed
// login and a refresh-token reuse reach the stream with the right type,
// company and ids and no secret; and the crash test — kill -9 during a
// burst of logins while NATS is cut, restart, and every audit record that
// committed has its event on the stream, by its stable id.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/faultproxy"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// outboxCaddyfile: the auth service on Postgres with the events on an
// external NATS; cheap password hashing with room for a burst of logins.
const outboxCaddyfile = `{
	admin {$ERP_ADMIN}
	metrics
	erp {
		postgres {$ERP_POSTGRES_URL}
		key_prefix {$ERP_KEY_PREFIX}
		demo on
		nats {$ERP_NATS_URL}
		authsvc {
			master_key {env.ERP_MASTER_KEY}
			password_hashing {
				memory_kib 256
				iterations 1
				queue 4096
				queue_wait 4s
			}
		}
	}
}

http://{$ERP_LISTEN} {
	route {
		erp_envelope
		handle /api/v1/auth/* {
			erp_authsvc
		}
		handle /.well-known/* {
			erp_authsvc
		}
		error 404
	}
	handle_errors {
		erp_envelope
	}
}
`

const outboxMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// outboxStack is a test's own Postgres database, key prefix (so its own
// stream, deleted at the end) and a JetStream client of the test's own.
type outboxStack struct {
	pgURL   string
	natsURL string
	prefix  string
	names   events.Names
	js      jetstream.JetStream
}

func outboxStart(t *testing.T) *outboxStack {
	t.Helper()
	s := &outboxStack{pgURL: testenv.Postgres(t), natsURL: testenv.NATSURL(t), prefix: testenv.Name() + ":"}
	s.names = events.NamesFor(s.prefix)
	nc, err := nats.Connect(s.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	s.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.js.DeleteStream(ctx, s.names.Stream)
		nc.Close()
	})
	return s
}

// outboxGateway starts a gateway on the stack, its NATS at natsURL.
func (s *outboxStack) outboxGateway(t *testing.T, natsURL string) *stacktest.Instance {
	t.Helper()
	return stacktest.Start(t, stacktest.Options{Config: outboxCaddyfile, Env: map[string]string{
		"ERP_POSTGRES_URL": s.pgURL, "ERP_KEY_PREFIX": s.prefix, "ERP_NATS_URL": natsURL, "ERP_MASTER_KEY": outboxMasterKey,
	}})
}

// outboxMsg is one message of the stream: its subject and event.
type outboxMsg struct {
	subject string
	raw     []byte
	ev      events.Event
	data    map[string]any
}

// outboxRead reads every message the stream holds now.
func (s *outboxStack) outboxRead(t *testing.T) []outboxMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.names.Stream)
	if err != nil {
		return nil // not made yet
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Msgs)
	if want == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []outboxMsg
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			om := outboxMsg{subject: m.Subject(), raw: m.Data()}
			if err := json.Unmarshal(m.Data(), &om.ev); err != nil {
				t.Fatalf("message %s is not an event: %v", m.Subject(), err)
			}
			_ = json.Unmarshal(om.ev.Data, &om.data)
			out = append(out, om)
		}
		if n == 0 {
			t.Fatalf("read %d of the stream's %d messages", len(out), want)
		}
	}
	return out
}

// outboxWait waits (at most d) for an event matching ok on the stream.
func (s *outboxStack) outboxWait(t *testing.T, d time.Duration, what string, ok func(outboxMsg) bool) outboxMsg {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		for _, m := range s.outboxRead(t) {
			if ok(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event on the stream within %s", what, d)
		}
	}
}

// outboxLogin posts a login and returns the user id and login token.
func outboxLogin(t *testing.T, base, email, password string) (int, string, string) {
	t.Helper()
	r := httpt.Do(t, "POST", base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": email, "password": password}), nil)
	for deadline := time.Now().Add(time.Minute); r.StatusCode == 503 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		r = httpt.Do(t, "POST", base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": email, "password": password}), nil)
	}
	var data struct {
		User       struct{ ID string } `json:"user"`
		LoginToken string              `json:"login_token"`
	}
	_ = json.Unmarshal(r.Envelope(t).Data, &data)
	return r.StatusCode, data.User.ID, data.LoginToken
}

// outboxSecrets fails the test if a message holds one of secrets.
func outboxSecrets(t *testing.T, msgs []outboxMsg, secrets ...string) {
	t.Helper()
	for _, m := range msgs {
		for _, s := range secrets {
			if s != "" && bytes.Contains(m.raw, []byte(s)) {
				t.Fatalf("event %s (%s) holds a secret", m.ev.ID, m.ev.Type)
			}
		}
	}
}

func TestOutboxAuthEvents(t *testing.T) {
	s := outboxStart(t)
	in := s.outboxGateway(t, s.natsURL)

	status, userID, loginToken := outboxLogin(t, in.URL, "alice@acme.test", demoauth.Password)
	if status != 200 || userID == "" {
		t.Fatalf("login: %d", status)
	}
	login := s.outboxWait(t, 10*time.Second, "erp.auth.login.succeeded", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.login.succeeded" && m.data["actor_id"] == userID
	})
	// A login is before any company: a platform event, on company token "_".
	if login.ev.CompanyID != "" || login.subject != s.names.Prefix+".ev._.erp.auth.login.succeeded" ||
		login.ev.Source != "/erpgate/authsvc" || login.ev.SpecVersion != "1.0" || !strings.HasPrefix(login.ev.ID, "audit-") ||
		login.data["ip"] != "127.0.0.1" || login.data["request_id"] == "" {
		t.Fatalf("login event on %s: %s", login.subject, login.raw)
	}

	// A session in acme, then a refresh-token reuse: the reuse event is acme's.
	tok := demoauth.Login(t, in.URL, "alice@acme.test", "acme")
	selected := s.outboxWait(t, 10*time.Second, "erp.auth.company.selected", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.company.selected" && m.ev.CompanyID == "acme" && m.data["actor_id"] == userID
	})
	if selected.subject != s.names.Prefix+".ev.acme.erp.auth.company.selected" {
		t.Fatalf("company.selected on %s", selected.subject)
	}
	refresh := func() int {
		return httpt.Do(t, "POST", in.URL+"/api/v1/auth/refresh", httpt.JSON(t, map[string]string{"refresh_token": tok.Refresh}), nil).StatusCode
	}
	if st := refresh(); st != 200 {
		t.Fatalf("refresh: %d", st)
	}
	if st := refresh(); st != 401 {
		t.Fatalf("refresh token reuse: %d, want 401", st)
	}
	reuse := s.outboxWait(t, 10*time.Second, "erp.auth.token.reuse_detected", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.token.reuse_detected"
	})
	if reuse.ev.CompanyID != "acme" || reuse.subject != s.names.Prefix+".ev.acme.erp.auth.token.reuse_detected" {
		t.Fatalf("reuse event on %s: %s", reuse.subject, reuse.raw)
	}

	// Bad input: a wrong password is an erp.auth.login.failed event with
	// the login name and the reason, never the password.
	const wrong = "not-the-password-7f3a"
	if st, _, _ := outboxLogin(t, in.URL, "bob@globex.test", wrong); st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	failed := s.outboxWait(t, 10*time.Second, "erp.auth.login.failed", func(m outboxMsg) bool {
		d, _ := m.data["details"].(map[string]any)
		return m.ev.Type == "erp.auth.login.failed" && d["email"] == "bob@globex.test"
	})
	if d, _ := failed.data["details"].(map[string]any); d["reason"] == "" || d["reason"] == nil {
		t.Fatalf("login.failed without a reason: %s", failed.raw)
	}
	all := s.outboxRead(t)
	outboxSecrets(t, all, demoauth.Password, wrong, loginToken, tok.Access, tok.Refresh, outboxMasterKey)

	// Every record of the trail is on the stream, once per id.
	outboxDrained(t, s)
	records := outboxRecords(t, s.pgURL)
	ids := outboxIDs(all)
	for id, r := range records {
		if ids[id] == 0 {
			t.Fatalf("audit record %s (%s) has no event", id, r)
		}
	}
	if len(ids) != len(records) {
		t.Fatalf("%d distinct events on the stream for %d audit records", len(ids), len(records))
	}

	// Prometheus: the backlog gauge and the published count.
	metrics := string(httpt.Get(t, in.AdminURL+"/metrics", nil).Body)
	m := regexp.MustCompile(`(?m)^erpgate_events_outbox_published_total (\d+)`).FindStringSubmatch(metrics)
	if m == nil || m[1] == "0" || !strings.Contains(metrics, "erpgate_events_outbox_backlog ") || !strings.Contains(metrics, "erpgate_events_outbox_failed_total ") {
		t.Fatalf("outbox metrics missing:\n%s", grepLines(metrics, "erpgate_events_outbox"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// outboxRecords is every audit record in Postgres: its event id -> type.
func outboxRecords(t *testing.T, pgURL string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT seq, type, hash FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var seq int64
		var typ string
		var hash []byte
		if err := rows.Scan(&seq, &typ, &hash); err != nil {
			t.Fatal(err)
		}
		// The event id as documented (authsvc.AuditEventID): computed here
		// from the row, so the test checks the contract, not the code.
		out["audit-"+strconv.FormatInt(seq, 10)+"-"+hex.EncodeToString(hash[:6])] = typ
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// outboxBacklog counts the rows of the outbox table.
func outboxBacklog(t *testing.T, pgURL string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM event_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// outboxDrained waits (at most 30s) until the outbox table is empty.
func outboxDrained(t *testing.T, s *outboxStack) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); outboxBacklog(t, s.pgURL) != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %d records after 30s", outboxBacklog(t, s.pgURL))
		}
	}
}

// outboxIDs counts the auth service's events by id (the security monitor's
// findings on the same stream are not audit records).
func outboxIDs(msgs []outboxMsg) map[string]int {
	ids := map[string]int{}
	for _, m := range msgs {
		if m.ev.Source == "/erpgate/authsvc" {
			ids[m.ev.ID]++
		}
	}
	return ids
}

// TestOutboxCrash: kill -9 during a burst of logins, with NATS cut for the
// second half of the burst so that committed records are certainly left
// unpublished; restarted on the same Postgres and NATS, the gateway
// publishes them, and every committed audit record has its event on the
// stream, by its stable id (duplicates allowed).
func TestOutboxCrash(t *testing.T) {
	s := outboxStart(t)
	natsHost := strings.TrimPrefix(s.natsURL, "nats://")
	if u, err := url.Parse(s.natsURL); err == nil && u.Host != "" {
		natsHost = u.Host
	}
	proxy := faultproxy.Start(t, natsHost)
	a := s.outboxGateway(t, "nats://"+proxy.Addr())
	// Ready: the service prepared, the engine up (one event through).
	_, userID, _ := outboxLogin(t, a.URL, "alice@acme.test", demoauth.Password)
	s.outboxWait(t, 20*time.Second, "first login", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.login.succeeded" && m.data["actor_id"] == userID
	})

	const burst, workers = 200, 16
	var answered, cut, killed atomic.Int64
	var killOnce, cutOnce sync.Once
	client := &http.Client{Timeout: 10 * time.Second}
	users := []string{"alice@acme.test", "bob@globex.test", "root@erpgate.local"}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				email, password := users[i%len(users)], demoauth.Password
				if i%4 == 3 {
					email, password = fmt.Sprintf("nobody-%d@example.test", i), "wrong-password"
				}
				body, _ := json.Marshal(map[string]string{"email": email, "password": password})
				resp, err := client.Post(a.URL+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
				if err != nil {
					continue // killed
				}
				resp.Body.Close()
				switch n := answered.Add(1); {
				case n == burst/4:
					cutOnce.Do(func() { proxy.Cut(); cut.Store(n) })
				case n == burst/2:
					killOnce.Do(func() { a.Kill(); killed.Store(n) })
				}
			}
		})
	}
	for i := range burst {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if killed.Load() == 0 {
		t.Fatalf("the burst ended before the kill (%d answered)", answered.Load())
	}
	left := outboxBacklog(t, s.pgURL)
	records := outboxRecords(t, s.pgURL)
	t.Logf("NATS cut after %d answers, killed after %d; %d of %d answered; %d audit records committed, %d left unpublished in the outbox",
		cut.Load(), killed.Load(), answered.Load(), burst, len(records), left)
	if left == 0 {
		t.Fatal("no committed record was left unpublished: the crash test tested nothing")
	}

	// Restart on the same Postgres and NATS (directly): the relay publishes
	// what the killed process left, without a request.
	proxy.Restore()
	s.outboxGateway(t, s.natsURL)
	outboxDrained(t, s)
	msgs := s.outboxRead(t)
	ids := outboxIDs(msgs)
	logins, dups := 0, 0
	for id, typ := range records {
		if strings.HasPrefix(typ, "login.") {
			logins++
		}
		if ids[id] == 0 {
			t.Errorf("committed audit record %s (%s) has no event on the stream", id, typ)
		}
	}
	for _, n := range ids {
		dups += n - 1
	}
	// No event without its record (the records of this database only).
	after := outboxRecords(t, s.pgURL)
	for id := range ids {
		if _, ok := after[id]; !ok {
			t.Errorf("event %s on the stream has no audit record", id)
		}
	}
	t.Logf("%d audit records (%d logins) committed; %d events on the stream, %d distinct, %d duplicates", len(records), logins, len(msgs), len(ids), dups)
	if logins < burst/2 {
		t.Fatalf("only %d login records for %d answered logins", logins, burst/2)
	}
}

// TestOutboxNATSDown: while NATS is away, logins still work and their
// events wait in the outbox (the backlog gauge shows them); once NATS is
// back the same process publishes them all.
func TestOutboxNATSDown(t *testing.T) {
	s := outboxStart(t)
	natsHost := strings.TrimPrefix(s.natsURL, "nats://")
	if u, err := url.Parse(s.natsURL); err == nil && u.Host != "" {
		natsHost = u.Host
	}
	proxy := faultproxy.Start(t, natsHost)
	in := s.outboxGateway(t, "nats://"+proxy.Addr())
	_, userID, _ := outboxLogin(t, in.URL, "alice@acme.test", demoauth.Password)
	s.outboxWait(t, 20*time.Second, "first login", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.login.succeeded" && m.data["actor_id"] == userID
	})

	proxy.Cut()
	const logins = 5
	for range logins {
		if st, _, _ := outboxLogin(t, in.URL, "bob@globex.test", demoauth.Password); st != 200 {
			t.Fatalf("login while NATS is away: %d", st)
		}
	}
	if n := outboxBacklog(t, s.pgURL); n < logins {
		t.Fatalf("outbox holds %d records, want at least %d", n, logins)
	}
	gauge := regexp.MustCompile(`(?m)^erpgate_events_outbox_backlog (\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		m := gauge.FindStringSubmatch(string(httpt.Get(t, in.AdminURL+"/metrics", nil).Body))
		if m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= logins {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("erpgate_events_outbox_backlog did not show the waiting records: %v", m)
		}
	}

	proxy.Restore()
	outboxDrained(t, s)
	records := outboxRecords(t, s.pgURL)
	ids := outboxIDs(s.outboxRead(t))
	for id, typ := range records {
		if ids[id] == 0 {
			t.Errorf("audit record %s (%s) has no event after NATS came back", id, typ)
		}
	}
}

// TestOutboxMemoryStore: on the in-memory store the records are published
// as they are appended; a restarted process counts its records from 1
// again, and its events still have ids of their own (the record's hash is
// in the id), so the stream's duplicate window does not swallow them.
func TestOutboxMemoryStore(t *testing.T) {
	s := outboxStart(t)
	s.pgURL = "" // the in-memory store
	first := s.outboxGateway(t, s.natsURL)
	_, userID, _ := outboxLogin(t, first.URL, "alice@acme.test", demoauth.Password)
	login1 := s.outboxWait(t, 10*time.Second, "login", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.login.succeeded" && m.data["actor_id"] == userID
	})
	before := outboxIDs(s.outboxRead(t))
	first.Stop()

	second := s.outboxGateway(t, s.natsURL)
	_, userID2, _ := outboxLogin(t, second.URL, "alice@acme.test", demoauth.Password)
	login2 := s.outboxWait(t, 10*time.Second, "login after the restart", func(m outboxMsg) bool {
		return m.ev.Type == "erp.auth.login.succeeded" && m.data["actor_id"] == userID2
	})
	if login1.ev.ID == login2.ev.ID {
		t.Fatalf("two logins, one event id %s", login1.ev.ID)
	}
	after := outboxIDs(s.outboxRead(t))
	if len(after) != 2*len(before) {
		t.Fatalf("%d events before the restart, %d after: the restarted process's events, seeded the same way, should double it", len(before), len(after))
	}
}
