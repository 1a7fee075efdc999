package events

// The stream_* files drive the real-time streams (`/api/v1/events/stream`,
// SSE, and `/api/v1/events/ws`, WebSocket) in the running binary:
// Caddyfile.example on Redis, Postgres and the external NATS (each test its
// own key prefix, so its own stream, deleted at the end).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// testMasterKey seals signing keys when instances share Postgres (test only).
const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// stack is n gateways (Caddyfile.example) on one Postgres database, one
// Redis key prefix and one stream of the external NATS, and the test's own
// engine on that stream to publish events as the edge would.
type stack struct {
	ins    []*stacktest.Instance
	engine *events.Engine
	names  events.Names
}

func startStack(t *testing.T, n int) *stack {
	t.Helper()
	prefix := testenv.Name() + ":"
	natsURL := testenv.NATSURL(t)
	env := map[string]string{
		"ERP_POSTGRES_URL": testenv.Postgres(t),
		"ERP_REDIS_URL":    testenv.RedisURL(),
		"ERP_NATS_URL":     natsURL,
		"ERP_KEY_PREFIX":   prefix,
		"ERP_MASTER_KEY":   testMasterKey,
	}
	s := &stack{names: events.NamesFor(prefix)}
	eng, err := events.Open(context.Background(), events.Config{URL: natsURL, Names: s.names})
	if err != nil {
		t.Fatal(err)
	}
	s.engine = eng
	t.Cleanup(func() {
		_ = eng.JetStream().DeleteStream(context.Background(), s.names.Stream)
		eng.Close()
	})
	for i := 0; i < n; i++ {
		s.ins = append(s.ins, stacktest.Start(t, stacktest.Options{Env: env}))
	}
	return s
}

// publish publishes an event of company and typ and waits for the stream's
// acknowledgement.
func (s *stack) publish(t *testing.T, company, typ, subject string) *events.Event {
	t.Helper()
	ev, err := events.New(events.EdgeSource("e2e"), typ, company, subject, map[string]string{"id": subject})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.engine.PublishSync(ctx, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// frame is one SSE frame (or a WebSocket message, as the same fields).
type frame struct {
	ID    string
	Event string
	Data  string
}

// cloudEvent is the CloudEvent in a frame's data.
func (f frame) cloudEvent(t *testing.T) events.Event {
	t.Helper()
	var ev events.Event
	if err := json.Unmarshal([]byte(f.Data), &ev); err != nil {
		t.Fatalf("frame data is not a CloudEvent: %v: %q", err, f.Data)
	}
	return ev
}

// sse is an open Server-Sent Events stream.
type sse struct {
	resp   *http.Response
	frames chan frame
	closed chan struct{} // the server closed the stream
	cancel context.CancelFunc
}

// openSSE opens the stream at base with the access token (none: no
// Authorization) and extra headers; it returns the answer when it is not
// a stream (status != 200), with its body.
func openSSE(t *testing.T, base, query, token string, header map[string]string) (*sse, int, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, b
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream Content-Type %q", ct)
	}
	s := &sse{resp: resp, frames: make(chan frame, 4096), closed: make(chan struct{}), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s, 200, nil
}

func (s *sse) read() {
	defer close(s.closed)
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var f frame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if (f.Event != "" || len(data) > 0) && !authEvent(f.Event) {
				f.Data = strings.Join(data, "\n")
				s.frames <- f
			}
			f, data = frame{}, nil
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			f.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
}

// authEvent: the auth service's own events (a login's company.selected, a
// logout's session.revoked) reach an admin's streams through the outbox at
// a time of their own; the stream tests check the events they publish and
// leave these out (outbox_test.go checks them).
func authEvent(typ string) bool { return strings.HasPrefix(typ, "erp.auth.") }

func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next is the next frame, failing the test after d.
func (s *sse) next(t *testing.T, d time.Duration) frame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case <-s.closed:
		select {
		case f := <-s.frames:
			return f
		default:
		}
		t.Fatal("the stream closed")
	case <-time.After(d):
		t.Fatalf("no frame within %s", d)
	}
	return frame{}
}

// none fails the test if a frame arrives within d.
func (s *sse) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Fatalf("unexpected frame %+v", f)
	case <-time.After(d):
	}
}

// waitClosed waits until the server closed the stream, failing after d.
func (s *sse) waitClosed(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(d):
		t.Fatalf("the stream is still open after %s", d)
	}
}

// login is a demo user's tokens at a company.
func login(t *testing.T, in *stacktest.Instance, email, company string) demoauth.Tokens {
	t.Helper()
	return demoauth.Login(t, in.URL, email, company)
}

// ws is an open WebSocket stream.
type ws struct {
	c    *websocket.Conn
	msgs chan frame
	err  chan error // the read's end: a *websocket.CloseError on a close frame
}

// dialWS opens the WebSocket with the token in the bearer subprotocol.
func dialWS(t *testing.T, base, query, token string) (*ws, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, _ := url.Parse(base)
	u.Scheme = "ws"
	opts := &websocket.DialOptions{}
	if token != "" {
		opts.Subprotocols = []string{"bearer", token}
	}
	c, resp, err := websocket.Dial(ctx, u.String()+"/api/v1/events/ws"+query, opts)
	if err != nil {
		return nil, resp, err
	}
	if c.Subprotocol() != "bearer" && token != "" {
		t.Fatalf("the server selected subprotocol %q, want bearer", c.Subprotocol())
	}
	w := &ws{c: c, msgs: make(chan frame, 4096), err: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				w.err <- err
				return
			}
			var m struct {
				ID    uint64          `json:"id"`
				Event json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				w.err <- fmt.Errorf("message is not {id, event}: %q", b)
				return
			}
			var ev struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(m.Event, &ev)
			if !authEvent(ev.Type) {
				w.msgs <- frame{ID: strconv.FormatUint(m.ID, 10), Event: ev.Type, Data: string(m.Event)}
			}
		}
	}()
	t.Cleanup(func() { _ = c.CloseNow() })
	return w, resp, nil
}

func (w *ws) next(t *testing.T, d time.Duration) frame {
	t.Helper()
	select {
	case f := <-w.msgs:
		return f
	case err := <-w.err:
		t.Fatalf("the WebSocket ended: %v", err)
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
	}
	return frame{}
}

// closeStatus waits (at most d) for the connection's end and returns its
// close code (-1: no close frame).
func (w *ws) closeStatus(t *testing.T, d time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	for {
		select {
		case <-w.msgs:
		case err := <-w.err:
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			return -1, err.Error()
		case <-time.After(d):
			t.Fatalf("the WebSocket is still open after %s", d)
		}
	}
}

// errorData is the data of a final `event: error`.
type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func decodeError(t *testing.T, f frame) errorData {
	t.Helper()
	if f.Event != "error" {
		t.Fatalf("want event: error, got %+v", f)
	}
	var e errorData
	if err := json.Unmarshal([]byte(f.Data), &e); err != nil {
		t.Fatalf("error data %q: %v", f.Data, err)
	}
	return e
}
