package testenv

// Mail: mailpit (github.com/axllent/mailpit, built and started by `make
// services`) is the SMTP server of the tests. ERP_TEST_SMTP_URL (default
// smtp://127.0.0.1:1025) is where the gateway sends; ERP_TEST_MAILPIT_URL
// (default http://127.0.0.1:8025) is mailpit's HTTP API, where tests read
// what was sent. Tests send to their own unique addresses (Name()), so
// parallel tests never read each other's mail.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// SMTPURL is the test SMTP server's URL; the test fails when it does not
// accept connections.
func SMTPURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("ERP_TEST_SMTP_URL")
	if u == "" {
		u = "smtp://127.0.0.1:1025"
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		t.Fatalf("testenv: ERP_TEST_SMTP_URL is not smtp://host:port")
	}
	c, err := net.DialTimeout("tcp", p.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("testenv: SMTP (mailpit) unreachable at %s (run `make test`, which starts it): %v", p.Host, err)
	}
	_ = c.Close()
	return u
}

// Mailpit reads the mail the test SMTP server received.
type Mailpit struct {
	URL string
	c   *http.Client
}

// MailAddress is a sender or recipient of a message.
type MailAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailMessage is one received message as mailpit's API gives it.
type MailMessage struct {
	ID      string        `json:"ID"`
	From    MailAddress   `json:"From"`
	To      []MailAddress `json:"To"`
	Subject string        `json:"Subject"`
	Text    string        `json:"Text"`
	HTML    string        `json:"HTML"`
	Date    string        `json:"Date"`
}

// NewMailpit checks that mailpit's API answers (the test fails when it
// does not) and returns its reader.
func NewMailpit(t testing.TB) *Mailpit {
	t.Helper()
	u := os.Getenv("ERP_TEST_MAILPIT_URL")
	if u == "" {
		u = "http://127.0.0.1:8025"
	}
	m := &Mailpit{URL: strings.TrimSuffix(u, "/"), c: &http.Client{Timeout: 10 * time.Second}}
	var info map[string]any
	if err := m.get("/api/v1/info", &info); err != nil {
		t.Fatalf("testenv: mailpit unreachable at %s (run `make test`, which starts it): %v", m.URL, err)
	}
	return m
}

func (m *Mailpit) get(path string, v any) error {
	resp, err := m.c.Get(m.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Search are the IDs of the messages to the address, newest first.
func (m *Mailpit) Search(t testing.TB, to string) []string {
	t.Helper()
	var res struct {
		Messages []struct {
			ID string        `json:"ID"`
			To []MailAddress `json:"To"`
		} `json:"messages"`
	}
	q := url.Values{"query": {`to:"` + to + `"`}, "limit": {"200"}}
	if err := m.get("/api/v1/search?"+q.Encode(), &res); err != nil {
		t.Fatalf("mailpit: search: %v", err)
	}
	var ids []string
	for _, msg := range res.Messages {
		for _, a := range msg.To { // the search matches substrings: keep exact recipients
			if strings.EqualFold(a.Address, to) {
				ids = append(ids, msg.ID)
				break
			}
		}
	}
	return ids
}

// Message is one message by ID.
func (m *Mailpit) Message(t testing.TB, id string) MailMessage {
	t.Helper()
	var msg MailMessage
	if err := m.get("/api/v1/message/"+url.PathEscape(id), &msg); err != nil {
		t.Fatalf("mailpit: message %s: %v", id, err)
	}
	return msg
}

// Count is how many messages the address received.
func (m *Mailpit) Count(t testing.TB, to string) int {
	t.Helper()
	return len(m.Search(t, to))
}

// WaitFor waits (up to 15 s) until the address has received at least n
// messages and returns the newest. Mail may be sent after the request that
// caused it was answered (magic links are): this is the test waiting for an
// event, not a timed assertion.
func (m *Mailpit) WaitFor(t testing.TB, to string, n int) MailMessage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ids := m.Search(t, to)
		if len(ids) >= n {
			return m.Message(t, ids[0])
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %s received %d messages, want %d", to, len(ids), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
