package mail_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/mail"
	"github.com/erpgate/erpgate/internal/testenv"
)

func TestNewRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, from string }{
		{"http://u:pw-s3cret@mail.example", "a@b.test"},
		{"smtp://u:pw-s3cret@mail.example/x", "a@b.test"},
		{"smtp://u:pw-s3cret@mail.example?x=1", "a@b.test"},
		{"smtp://", "a@b.test"},
		{"smtp://mail.example", ""},
		{"smtp://mail.example", "a@b.test\r\nBcc: x@evil.test"},
		{"smtp://mail.example", "no address"},
		{"%%smtp://u:pw-s3cret@", "a@b.test"},
	} {
		_, err := mail.New(tc.url, tc.from)
		if err == nil {
			t.Errorf("New(%q, %q) accepted", tc.url, tc.from)
		} else if strings.Contains(err.Error(), "pw-s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	s, err := mail.New("smtps://u:p@mail.example", "erpgate <no-reply@erpgate.test>")
	if err != nil || s.Server() != "mail.example:465" {
		t.Fatalf("smtps default port: %v %v", s, err)
	}
}

func TestValidAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"alice@acme.test":                     true,
		"a.b+c@acme.test":                     true,
		"":                                    false,
		"alice":                               false,
		"Alice <alice@acme.test>":             false,
		"alice@acme.test\r\nBcc: x@evil.test": false,
		"alice@acme.test, bob@acme.test":      false,
		"alice@acme.test\n":                   false,
	} {
		if got := mail.ValidAddress(addr); got != want {
			t.Errorf("ValidAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Send delivers through a real SMTP server (mailpit) with AUTH PLAIN, in
// text and HTML, and refuses header injection before connecting.
func TestSendThroughMailpit(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.SMTPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("mailer", "pw")
	s, err := mail.New(u.String(), "erpgate tests <no-reply@erpgate.test>")
	if err != nil {
		t.Fatal(err)
	}
	mp := testenv.NewMailpit(t)
	to := strings.ReplaceAll(testenv.Name(), "_", "-") + "@acme.test"
	ctx := context.Background()
	for _, m := range []mail.Message{
		{To: to + "\r\nBcc: x@evil.test", Subject: "x", Text: "x"},
		{To: to, Subject: "hello\r\nBcc: x@evil.test", Text: "x"},
		{To: "Eve <" + to + ">", Subject: "x", Text: "x"},
	} {
		if err := s.Send(ctx, m); err == nil {
			t.Errorf("sent %+v", m)
		}
	}
	err = s.Send(ctx, mail.Message{To: to, Subject: "Grüße — sign in", Text: "line one\nline two: https://example.test/login#magic=abc\n",
		HTML: `<p>line one <a href="https://example.test/login#magic=abc">sign in</a></p>`})
	if err != nil {
		t.Fatal(err)
	}
	got := mp.WaitFor(t, to, 1)
	if got.Subject != "Grüße — sign in" || got.From.Address != "no-reply@erpgate.test" || got.From.Name != "erpgate tests" {
		t.Fatalf("received %+v", got)
	}
	if !strings.Contains(got.Text, "line two: https://example.test/login#magic=abc") || !strings.Contains(got.HTML, `href="https://example.test/login#magic=abc"`) {
		t.Fatalf("bodies: %q / %q", got.Text, got.HTML)
	}
	if n := mp.Count(t, "x@evil.test"); n != 0 {
		t.Fatalf("an injected recipient received %d mails", n)
	}
}

// A server that does not answer is an error within the timeout, naming
// the server without the password.
func TestSendUnreachable(t *testing.T) {
	t.Parallel()
	s, err := mail.New("smtp://u:pw-s3cret@127.0.0.1:1", "a@b.test")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: "alice@acme.test", Subject: "x", Text: "x"})
	if err == nil || strings.Contains(err.Error(), "pw-s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v", err)
	}
}
