// Package mail sends the auth service's mail (magic links, one-time codes)
// through an SMTP server named by a URL:
//
//	smtp://[user:password@]host[:port]   plain SMTP (port 25 by default),
//	                                     upgraded with STARTTLS when offered
//	smtps://[user:password@]host[:port]  implicit TLS (port 465 by default)
//
// Credentials in the userinfo are sent with AUTH PLAIN, only over TLS or to
// a loopback server (net/smtp's rule), and never appear in an error or a log
// line: errors name the server by host and port only. Every address is
// parsed (net/mail) and every header value is checked for CR and LF, so a
// caller cannot inject a header or an SMTP command.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one Send: the connection, the dialogue and the data.
const DefaultTimeout = 15 * time.Second

// Sender sends mail through one SMTP server. It is safe for concurrent use
// (each Send has its own connection).
type Sender struct {
	addr     string // host:port
	host     string
	implicit bool // smtps
	user     string
	pass     string
	hasAuth  bool
	from     *mail.Address
	// Timeout bounds one Send. Default DefaultTimeout.
	Timeout time.Duration
	// TLSConfig is used for STARTTLS and smtps (ServerName is set to the
	// URL's host when empty). Nil: the system roots.
	TLSConfig *tls.Config
}

// Message is one mail: a plain-text body and, optionally, an HTML one
// (sent as multipart/alternative).
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// New parses the server URL and the sender address ("Name <addr>" or a
// bare address).
func New(rawURL, from string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("mail: the SMTP URL does not parse") // never echo it: it may hold a password
	}
	s := &Sender{Timeout: DefaultTimeout}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "25"
	case "smtps":
		port, s.implicit = "465", true
	default:
		return nil, errors.New("mail: the SMTP URL must start with smtp:// or smtps://")
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: the SMTP URL must be scheme://[user:password@]host[:port]")
	}
	s.host = u.Hostname()
	if p := u.Port(); p != "" {
		port = p
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		s.hasAuth = true
	}
	if from == "" {
		return nil, errors.New("mail: a sender address is required")
	}
	if strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("mail: the sender address holds a line break")
	}
	s.from, err = mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("mail: the sender address: %w", err)
	}
	return s, nil
}

// Server is the server's host:port (no credentials), for log lines.
func (s *Sender) Server() string { return s.addr }

// ValidAddress reports whether addr is one bare mailbox address
// (local@domain, no display name, no line break): what Send accepts in To.
func ValidAddress(addr string) bool {
	if addr == "" || strings.ContainsAny(addr, "\r\n<>\",;") || len(addr) > 254 {
		return false
	}
	a, err := mail.ParseAddress(addr)
	return err == nil && a.Address == addr && a.Name == ""
}

// Send delivers m. ctx and Timeout bound it.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if !ValidAddress(m.To) {
		return errors.New("mail: the recipient is not one valid address")
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("mail: the subject holds a line break")
	}
	body, err := s.compose(m)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.deliver(ctx, m.To, body); err != nil {
		return fmt.Errorf("mail: send through %s: %w", s.addr, err)
	}
	return nil
}

func (s *Sender) tlsConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		c = s.TLSConfig.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = s.host
	}
	return c
}

func (s *Sender) deliver(ctx context.Context, to string, body []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// a cancelled context ends the dialogue too
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if s.implicit {
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tlsConfig()); err != nil {
				return err
			}
		}
	}
	if s.hasAuth {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server offers no AUTH")
		}
		// PlainAuth refuses to send the password unencrypted to anything
		// but a loopback server.
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return errors.New("authentication refused or not possible without TLS")
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// compose renders the message: headers, then a text/plain part or a
// multipart/alternative of text and HTML, quoted-printable, CRLF lines.
func (s *Sender) compose(m Message) ([]byte, error) {
	var b bytes.Buffer
	h := func(k, v string) error {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("mail: header %s holds a line break", k)
		}
		b.WriteString(k + ": " + v + "\r\n")
		return nil
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	domain := "localhost"
	if at := strings.LastIndexByte(s.from.Address, '@'); at >= 0 {
		domain = s.from.Address[at+1:]
	}
	to := &mail.Address{Address: m.To}
	for _, kv := range [][2]string{
		{"From", s.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", m.Subject)},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Auto-Submitted", "auto-generated"},
	} {
		if err := h(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if m.HTML == "" {
		_ = h("Content-Type", "text/plain; charset=utf-8")
		_ = h("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	_ = h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	for _, p := range [][2]string{{"text/plain; charset=utf-8", m.Text}, {"text/html; charset=utf-8", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p[0]}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		if err := writeQP(pw, p[1]); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, text string) error {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(text)); err != nil {
		return err
	}
	return qp.Close()
}
