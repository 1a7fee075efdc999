// Package sms sends text messages through an HTTP provider that takes a
// Twilio-style form POST: To, From and Body, authenticated with HTTP basic
// auth. The provider is named by one URL:
//
//	https://ACCOUNT:TOKEN@api.provider.example/2010-04-01/Accounts/ACCOUNT/Messages.json?from=%2B15550100
//
// The userinfo is the basic-auth credential and the `from` query parameter
// the sender number (E.164); both are taken off the URL before it is used,
// so the request goes to the URL without them. Any 2xx answer means sent.
// The credential never appears in an error or a log line: errors name the
// provider by scheme, host and path only.
package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultTimeout bounds one Send.
const DefaultTimeout = 10 * time.Second

// e164 is an international number: +, a non-zero country digit, 7 to 15 digits in all.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// ValidNumber reports whether n is an E.164 number (+ and digits only).
func ValidNumber(n string) bool { return e164.MatchString(n) }

// Sender posts to one provider. It is safe for concurrent use.
type Sender struct {
	endpoint string // without userinfo and the from parameter
	safe     string // scheme://host/path, for errors
	user     string
	pass     string
	hasAuth  bool
	from     string
	// Client does the requests; nil: one with DefaultTimeout that follows
	// no redirect (the credential goes to the configured URL only).
	Client *http.Client
}

// New parses the provider URL.
func New(rawURL string) (*Sender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("sms: the provider URL does not parse") // never echo it: it holds a credential
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("sms: the provider URL must be http(s)://[user:password@]host/path?from=+NUMBER")
	}
	s := &Sender{}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		s.hasAuth = true
	}
	q := u.Query()
	s.from = q.Get("from")
	if !ValidNumber(s.from) {
		return nil, errors.New("sms: the provider URL needs a from parameter with the sender's E.164 number (from=%2B1555…)")
	}
	q.Del("from")
	u.User, u.RawQuery, u.Fragment = nil, q.Encode(), ""
	s.endpoint = u.String()
	s.safe = u.Scheme + "://" + u.Host + u.Path
	s.Client = &http.Client{
		Timeout:       DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Provider is the provider's URL without credential or query, for log lines.
func (s *Sender) Provider() string { return s.safe }

// From is the sender number.
func (s *Sender) From() string { return s.from }

// Send sends body to the E.164 number to.
func (s *Sender) Send(ctx context.Context, to, body string) error {
	if !ValidNumber(to) {
		return errors.New("sms: the recipient is not an E.164 number")
	}
	form := url.Values{"To": {to}, "From": {s.from}, "Body": {body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("sms: request to %s: %w", s.safe, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if s.hasAuth {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL is the endpoint (no credential), but keep the message short
		}
		return fmt.Errorf("sms: post to %s: %w", s.safe, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sms: %s answered %d", s.safe, resp.StatusCode)
	}
	return nil
}
