package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
	core "github.com/erpgate/erpgate/internal/batch"
	env "github.com/erpgate/erpgate/internal/envelope"
)

// copiedHeaders are the batch request's headers every sub-request carries:
// the caller's credential (a token, an API key, the cookie with its CSRF
// header and origin) and what the edge reads of the client (its address
// through a trusted proxy, its agent and language).
var copiedHeaders = []string{
	"Authorization", "X-Api-Key", "Cookie", "X-Csrf-Token", "Origin",
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded",
	"User-Agent", "Accept-Language",
}

// headerRefused reports whether an item may not set the header name
// (canonical form): the credential and client headers come from the batch
// only, framing headers from the item's body, and the edge's identity
// headers never from a client.
func headerRefused(name string) bool {
	for _, c := range copiedHeaders {
		if name == c && name != "User-Agent" && name != "Accept-Language" {
			return true
		}
	}
	switch name {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Te", "Trailer", "Keep-Alive", "X-Real-Ip":
		return true
	}
	return strings.HasPrefix(name, "Proxy-") || strings.HasPrefix(name, "X-Erp-") || strings.HasPrefix(name, "X-Forwarded-")
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validHeaderValue reports whether s has no control bytes but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// dispatcher runs one batch's items through the server.
type dispatcher struct {
	h      *Handler
	srv    *caddyhttp.Server
	parent *http.Request
	meta   *env.Meta
	index  map[string]int
	creds  http.Header // erp_batch_credentials' copy
}

// itemError is an item's own failure envelope.
func (d *dispatcher) itemError(code, field, msg string) json.RawMessage {
	m := *d.meta
	m.Timestamp = time.Now()
	return env.AppendFailure(nil, &m, env.Error{Code: code, Message: msg, Field: field})
}

// failed is the body of an item whose dependency dep did not succeed.
func (d *dispatcher) failed(it *core.Item, dep string) json.RawMessage {
	return d.itemError(contract.CodeFailedDependency, "requests["+strconv.Itoa(d.index[it.ID])+"].dependsOn",
		"not run: request "+strconv.Quote(dep)+" did not succeed")
}

// do runs one item through the server: checks, builds the sub-request,
// serves it into a bounded recorder.
func (d *dispatcher) do(ctx context.Context, it *core.Item) (int, json.RawMessage) {
	field := "requests[" + strconv.Itoa(d.index[it.ID]) + "]"
	if !core.MethodAllowed(it.Method) {
		return http.StatusBadRequest, d.itemError(contract.CodeValidationFailed, field+".method", "method must be GET, POST, PUT, PATCH or DELETE")
	}
	if msg := core.PathProblem(it.Path, refusedNames); msg != "" {
		return http.StatusBadRequest, d.itemError(contract.CodeValidationFailed, field+".path", msg)
	}
	u, err := url.ParseRequestURI(it.Path)
	if err != nil {
		return http.StatusBadRequest, d.itemError(contract.CodeValidationFailed, field+".path", "path is not a valid request target")
	}
	p := d.parent
	ctx, cancel := context.WithCancel(context.WithValue(ctx, inBatch, true))
	defer cancel()
	sub := &http.Request{
		Method:     it.Method,
		URL:        u,
		RequestURI: it.Path,
		Proto:      p.Proto, ProtoMajor: p.ProtoMajor, ProtoMinor: p.ProtoMinor,
		Header:     make(http.Header, len(copiedHeaders)+len(it.Headers)+2),
		Host:       p.Host,
		RemoteAddr: p.RemoteAddr,
		TLS:        p.TLS,
		Body:       http.NoBody,
	}
	for _, name := range copiedHeaders {
		if v, ok := p.Header[name]; ok {
			sub.Header[name] = v
		}
	}
	for name, v := range d.creds { // erp_auth removed them from p
		sub.Header[name] = v
	}
	for name, v := range it.Headers {
		canon := http.CanonicalHeaderKey(name)
		if !validHeaderName(name) || !validHeaderValue(v) {
			return http.StatusBadRequest, d.itemError(contract.CodeValidationFailed, field+".headers", "invalid header "+strconv.Quote(name))
		}
		if headerRefused(canon) {
			return http.StatusBadRequest, d.itemError(contract.CodeValidationFailed, field+".headers",
				"header "+canon+" cannot be set per request (credentials and client headers come from the batch)")
		}
		sub.Header.Set(canon, v)
	}
	if len(it.Body) > 0 && string(it.Body) != "null" {
		sub.Body = bodyReader{bytes.NewReader(it.Body)}
		sub.ContentLength = int64(len(it.Body))
		if sub.Header.Get("Content-Type") == "" {
			sub.Header.Set("Content-Type", "application/json")
		}
	}
	sub = sub.WithContext(ctx)
	rec := &recorder{header: make(http.Header), limit: d.h.MaxResponse, cancel: cancel}
	d.srv.ServeHTTP(rec, sub)
	if rec.overflow {
		return http.StatusRequestEntityTooLarge, d.itemError(contract.CodePayloadTooLarge, field,
			"the answer is over "+strconv.FormatInt(d.h.MaxResponse, 10)+" bytes: send this request alone")
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	body := rec.buf.Bytes()
	switch {
	case len(body) == 0:
		return status, nil
	case json.Valid(body):
		return status, json.RawMessage(bytes.Clone(body))
	default:
		b, _ := json.Marshal(string(body))
		return status, b
	}
}

// bodyReader is a sub-request's body: a reader with a no-op Close.
type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

// errTooLarge ends a sub-answer longer than the limit.
var errTooLarge = errors.New("erp_batch: sub-answer over max_response")

// recorder keeps a sub-answer's status, headers and at most limit bytes of
// body; a longer answer cancels the sub-request.
type recorder struct {
	header      http.Header
	status      int
	buf         bytes.Buffer
	limit       int64
	overflow    bool
	cancel      context.CancelFunc
	wroteHeader bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.wroteHeader || status < 200 { // informational answers are not the answer
		return
	}
	r.wroteHeader = true
	r.status = status
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	if r.overflow {
		return 0, errTooLarge
	}
	if int64(r.buf.Len()+len(p)) > r.limit {
		r.overflow = true
		r.cancel()
		return 0, errTooLarge
	}
	return r.buf.Write(p)
}

// Flush is a no-op: the answer is kept whole.
func (r *recorder) Flush() {}
