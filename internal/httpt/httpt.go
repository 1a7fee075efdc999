// Package httpt has small HTTP helpers for whole-stack tests: requests with
// timeouts and envelope decoding. It owns no state but its shared Client;
// it imports nothing of ours and no Caddy.
package httpt

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Client is the tests' HTTP client.
var Client = &http.Client{Timeout: 60 * time.Second}

// Envelope is the decoded envelope.
type Envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Meta    struct {
		Timestamp  string `json:"timestamp"`
		RequestID  string `json:"request_id"`
		CompanyID  string `json:"company_id"`
		UserID     string `json:"user_id"`
		APIVersion string `json:"api_version"`
	} `json:"meta"`
	Pagination *struct {
		Page    int   `json:"page"`
		Limit   int   `json:"limit"`
		Total   int64 `json:"total"`
		HasNext bool  `json:"has_next"`
	} `json:"pagination"`
	Errors []struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Field   string         `json:"field"`
		Context map[string]any `json:"context"`
	} `json:"errors"`
}

// Code is the first error's code, or "".
func (e *Envelope) Code() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// Response is a finished response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// Do sends a request and reads the whole body.
func Do(t testing.TB, method, url string, body []byte, header map[string]string) *Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// A config change through Caddy's admin API restarts the admin server,
	// so a kept-alive connection to it would be reset by the next call.
	if strings.HasPrefix(req.URL.Path, "/config/") || req.URL.Path == "/load" {
		req.Close = true
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := Client.Do(req)
	// Each config load replaces Caddy's admin server: a call that lands on
	// the old one while it closes sees its connection dropped before any
	// answer, so it was not processed and is sent again.
	for try := 0; err != nil && req.Close && try < 10; try++ {
		time.Sleep(100 * time.Millisecond)
		var rd2 io.Reader
		if body != nil {
			rd2 = bytes.NewReader(body)
		}
		retry, _ := http.NewRequest(method, url, rd2)
		retry.Header = req.Header
		retry.Host = req.Host
		retry.Close = true
		resp, err = Client.Do(retry)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return &Response{Response: resp, Body: b}
}

// Envelope decodes the body as an envelope, failing the test if it is not one.
func (r *Response) Envelope(t testing.TB) *Envelope {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("%s %s: body is not a JSON envelope (%v): %.400s", r.Request.Method, r.Request.URL, err, r.Body)
	}
	if e.Meta.RequestID == "" || e.Meta.Timestamp == "" {
		t.Fatalf("%s %s: envelope without meta: %.400s", r.Request.Method, r.Request.URL, r.Body)
	}
	if e.Success == (len(e.Errors) > 0) {
		t.Fatalf("%s %s: success=%v with %d errors: %.400s", r.Request.Method, r.Request.URL, e.Success, len(e.Errors), r.Body)
	}
	if !e.Success && string(e.Data) != "null" {
		t.Fatalf("%s %s: failed envelope with data: %.400s", r.Request.Method, r.Request.URL, r.Body)
	}
	return &e
}

// Get is Do with GET and no body.
func Get(t testing.TB, url string, header map[string]string) *Response {
	t.Helper()
	return Do(t, http.MethodGet, url, nil, header)
}

// JSON marshals v or fails the test.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
