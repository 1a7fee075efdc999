package events

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	ev "github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// secMasterKey seals signing keys when instances share Postgres (test only).
const secMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// secCaddyfile: the auth service behind erp_ip_block, the monitor's rules
// tightened for the test; 127.0.0.1 is a trusted proxy, so the test sets
// the client address the edge sees with X-Forwarded-For.
const secCaddyfile = `{
	admin {$ERP_ADMIN}
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	erp {
		postgres {$ERP_POSTGRES_URL}
		redis {$ERP_REDIS_URL}
		key_prefix {$ERP_KEY_PREFIX}
		nats {env.ERP_NATS_URL}
		demo on
		authsvc {
			master_key {env.ERP_MASTER_KEY}
		}
		security {
			rule password_guessing {
				threshold 5
				account_threshold 3
				window 1m
				action block_ip 4s
				action lock_account
			}
			rule credential_stuffing {
				threshold 4
				window 1m
				action block_ip 4s
			}
		}
	}
}

http://{$ERP_LISTEN} {
	erp_envelope
	erp_ip_block
	handle /api/v1/auth/* {
		erp_authsvc
	}
	handle /api/v1/admin/* {
		erp_authsvc
	}
	handle /.well-known/* {
		erp_authsvc
	}
	handle /whoami {
		erp_auth {
			authenticated_only
		}
		respond "ok" 200
	}
	error 404
	handle_errors {
		erp_envelope
	}
}
`

// secStack is two gateway instances sharing Postgres, Redis, NATS and a
// key prefix (so one stream), and the test's own JetStream client.
type secStack struct {
	a, b   *stacktest.Instance
	names  ev.Names
	js     jetstream.JetStream
	stream jetstream.Stream

	mu       sync.Mutex
	security []*ev.Event // erp.security.* and erp.auth.api_key.used events seen on the stream
}

func secStart(t *testing.T, instances int) *secStack {
	t.Helper()
	natsURL := testenv.NATSURL(t)
	redisURL, prefix := testenv.Redis(t)
	pg := testenv.Postgres(t)
	env := map[string]string{
		"ERP_POSTGRES_URL": pg, "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_NATS_URL": natsURL, "ERP_MASTER_KEY": secMasterKey,
	}
	s := &secStack{names: ev.NamesFor(prefix)}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if s.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.js.DeleteStream(ctx, s.names.Stream)
	})
	s.a = stacktest.Start(t, stacktest.Options{Config: secCaddyfile, Env: env})
	if instances > 1 {
		s.b = stacktest.Start(t, stacktest.Options{Config: secCaddyfile, Env: env})
	}
	// The monitor's durable consumer exists once an instance's engine and
	// monitor started: auth events published before would not be judged
	// (the consumer starts at new events).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if s.stream, err = s.js.Stream(ctx, s.names.Stream); err == nil {
			if _, err = s.stream.Consumer(ctx, "security"); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the security monitor's consumer never appeared: %v\n%s", err, s.a.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Watch every company's security events and the edge's API key uses
	// (one ordered consumer per filter: the machine's nats-server takes
	// one filter per consumer).
	for _, filter := range []string{s.names.AllFilter("erp.security.*"), s.names.AllFilter("erp.auth.api_key.used")} {
		cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			t.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			var e ev.Event
			if json.Unmarshal(m.Data(), &e) == nil {
				s.mu.Lock()
				s.security = append(s.security, &e)
				s.mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cc.Stop)
	}
	return s
}

// secAuthEvent publishes an auth event as the auth service's outbox does
// (type mapping and data shape of the common event contract).
func (s *secStack) secAuthEvent(t *testing.T, typ, company, subject string, data map[string]any) {
	t.Helper()
	e, err := ev.New(ev.SourceAuthsvc, typ, company, subject, data)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.js.Publish(ctx, s.names.Subject(company, typ), body, jetstream.WithMsgID(e.ID)); err != nil {
		t.Fatal(err)
	}
}

func secFailed(userID, email, ip string) map[string]any {
	return map[string]any{"actor_id": userID, "subject_id": "", "ip": ip, "user_agent": "hydra/9", "request_id": "",
		"details": map[string]string{"email": email, "reason": "bad_password"}}
}

// secWaitFinding waits up to d for an erp.security.<rule> event matching ok.
func (s *secStack) secWaitFinding(t *testing.T, rule string, d time.Duration, ok func(e *ev.Event, f map[string]any) bool) (*ev.Event, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s.mu.Lock()
		list := append([]*ev.Event(nil), s.security...)
		s.mu.Unlock()
		for _, e := range list {
			if e.Type != "erp.security."+rule {
				continue
			}
			var f map[string]any
			if json.Unmarshal(e.Data, &f) == nil && ok(e, f) {
				return e, f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no erp.security.%s event within %s; seen: %d security events\n%s", rule, d, len(list), s.a.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// secFrom is a request to in as if from client address ip.
func secFrom(t *testing.T, in *stacktest.Instance, ip string) *httpt.Response {
	t.Helper()
	return httpt.Get(t, in.URL+"/.well-known/jwks.json", map[string]string{"X-Forwarded-For": ip})
}

// secWaitBlocked waits up to d until in refuses ip (want true) or serves it.
func secWaitBlocked(t *testing.T, in *stacktest.Instance, ip string, want bool, d time.Duration) *httpt.Response {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := secFrom(t, in, ip)
		if (r.StatusCode == http.StatusForbidden) == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s from %s: %d %s after %s; want blocked=%v", in.URL, ip, r.StatusCode, r.Body, d, want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// secCount is the number of events of typ seen so far.
func (s *secStack) secCount(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.security {
		if e.Type == typ {
			n++
		}
	}
	return n
}
