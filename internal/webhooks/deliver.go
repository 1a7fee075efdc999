package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Limits of one attempt.
const (
	DefaultTimeout   = 10 * time.Second // the whole attempt, connect to last byte read
	maxAnswerRead    = 64 << 10         // the answer is read (then dropped) up to this
	maxAnswerKept    = 1 << 10          // the first 1 KB of it is kept in the Delivery
	contentTypeEvent = "application/cloudevents+json"
	userAgent        = "erpgate-webhooks/1"
)

// newClient is the HTTP client of deliveries: the safe dialer, no proxy
// from the environment, no redirects followed (a 3xx is a failed attempt).
func newClient(d *safeDialer, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// outcome is what one attempt gave.
type outcome struct {
	status   int    // HTTP status; 0 without an answer
	errText  string // safe text, "" on success
	duration time.Duration
	response string // first 1 KB of the answer
}

func (o outcome) ok() bool   { return o.status >= 200 && o.status < 300 }
func (o outcome) gone() bool { return o.status == http.StatusGone }

// post makes one attempt: body signed with keys, timestamp now.
func post(ctx context.Context, c *http.Client, target, eventID string, keys [][]byte, body []byte, now time.Time) outcome {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return outcome{errText: "invalid target URL", duration: time.Since(start)}
	}
	req.Header.Set("Content-Type", contentTypeEvent)
	req.Header.Set("User-Agent", userAgent)
	Sign(req.Header, keys, eventID, now, body)
	resp, err := c.Do(req)
	if err != nil {
		return outcome{errText: errorText(err), duration: time.Since(start)}
	}
	defer resp.Body.Close()
	kept := make([]byte, maxAnswerKept)
	n, readErr := io.ReadFull(resp.Body, kept)
	kept = kept[:n]
	if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
		readErr = nil // shorter than 1 KB
	} else if readErr == nil {
		_, readErr = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerRead-maxAnswerKept))
	}
	o := outcome{status: resp.StatusCode, duration: time.Since(start), response: safeText(kept)}
	switch {
	case readErr != nil && o.ok():
		o.status, o.errText = 0, errorText(readErr) // the answer did not arrive whole: not a success
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.errText = "redirect not followed"
	}
	return o
}

// safeText is b as valid UTF-8 without NUL bytes (Postgres text holds
// neither).
func safeText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// errorText names a failed attempt's cause without the details of the
// network (never an address of ours).
func errorText(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case errors.Is(err, errBlocked):
		return errBlocked.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &dnsErr):
		return "dns lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection reset"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return "tls error"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	}
	return "connection failed"
}
