// Package idempotency is the erp_idempotency handler: a POST or PATCH sent
// with an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) is
// answered once by the backend; a retry with the same key and the same
// request gets the stored answer (`Idempotent-Replayed: true`) and never
// reaches the backend. The store and the fingerprint are in
// internal/idempotency (no Caddy import); answers live in the erp app's
// Redis when it has one (every instance replays every other's answers),
// else in the process's memory (kept across reloads through erpapp.Keep).
package idempotency

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/tee"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/idempotency"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Header names.
const (
	HeaderKey      = "Idempotency-Key"
	HeaderReplayed = "Idempotent-Replayed"
)

// Handler stores first answers per company and key. It goes inside
// `handle /api/*` after erp_auth and erp_quota (the company is the
// verified one; a replay counts against the company's rate and quota like
// any request the edge answers, though it costs the backend nothing) and
// before reverse_proxy:
//
//	erp_idempotency {
//		ttl 24h
//		max_entry 1MiB
//	}
//
// What is stored is the backend's answer before erp_envelope translates
// it (status, the headers that describe it, body), so a replay goes
// through the same translation. Answers with a 5xx status, and transport
// failures, are not stored: the key is released and the client may retry.
// 4xx answers are stored (the draft: the request was processed). An answer
// larger than max_entry is not stored either (logged; the key is
// released).
//
// The key is only the client's: erp_version rewrites the request before
// this handler, and the JSON-RPC dialect marks its reads (GETs it turns
// into POSTs) with an Idempotency-Key of its own for the proxy's retries.
// Only requests whose client method (Caddy's original request) is POST or
// PATCH are considered, so that marker is never taken for a client's key.
//
// Errors: a malformed key (empty, over 255 characters, not printable
// ASCII, repeated) is 400 BAD_REQUEST with field Idempotency-Key; the key
// used with another request (method, path or body) is 422
// VALIDATION_FAILED; the key's first request still in flight is 409
// CONFLICT with Retry-After.
type Handler struct {
	// TTL is how long an answer is kept. Default: 24h.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Lease is how long a key stays locked by a request that has not
	// answered (a crashed instance's lock ends with it); it should exceed
	// the upstream timeout. Default: 2m.
	Lease caddy.Duration `json:"lease,omitempty"`
	// MaxEntry is the largest answer body stored, in bytes. Default: 1 MiB.
	MaxEntry int `json:"max_entry,omitempty"`
	// MaxRequest is the largest request body accepted with a key (it is
	// read whole to fingerprint it); larger is 413. Default: 10 MiB.
	MaxRequest int `json:"max_request,omitempty"`
	// MemoryBytes bounds the memory store (no Redis) in bytes. Default: 64 MiB.
	MemoryBytes int `json:"memory_bytes,omitempty"`
	// Company names the company keys belong to. Default:
	// `{http.auth.user.company_id}`.
	Company string `json:"company,omitempty"`
	// RetryAfter is the Retry-After (seconds) of a 409 while in flight. Default: 1.
	RetryAfter int `json:"retry_after,omitempty"`

	store   idempotency.Store
	logger  *zap.Logger
	timeout time.Duration
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_idempotency",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets the defaults and picks the store.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.logger = ctx.Logger()
	h.setDefaults()
	if rdb := app.RedisClient(); rdb != nil {
		h.store = idempotency.NewRedis(rdb, app.KeyPrefix+contract.RedisKeyIdempotency, time.Duration(h.TTL), time.Duration(h.Lease))
		return nil
	}
	kept, err := erpapp.Keep(app, "idem|"+strconv.Itoa(h.MemoryBytes)+"|"+time.Duration(h.TTL).String()+"|"+time.Duration(h.Lease).String(), func(*erpapp.Lasting) (*memoryStore, error) {
		return &memoryStore{idempotency.NewMemory(time.Duration(h.TTL), time.Duration(h.Lease), h.MemoryBytes, nil)}, nil
	})
	if err != nil {
		return err
	}
	h.store = kept
	return nil
}

func (h *Handler) setDefaults() {
	if h.TTL == 0 {
		h.TTL = caddy.Duration(24 * time.Hour)
	}
	if h.Lease == 0 {
		h.Lease = caddy.Duration(2 * time.Minute)
	}
	if h.MaxEntry == 0 {
		h.MaxEntry = 1 << 20
	}
	if h.MaxRequest == 0 {
		h.MaxRequest = 10 << 20
	}
	if h.MemoryBytes == 0 {
		h.MemoryBytes = 64 << 20
	}
	if h.Company == "" {
		h.Company = "{http.auth.user.company_id}"
	}
	if h.RetryAfter == 0 {
		h.RetryAfter = 1
	}
	h.timeout = 2 * time.Second
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	switch {
	case h.TTL < 0 || h.Lease < 0:
		return errors.New("erp_idempotency: ttl and lease must be positive")
	case h.MaxEntry < 0 || h.MaxRequest < 0 || h.MemoryBytes < 0 || h.RetryAfter < 0:
		return errors.New("erp_idempotency: sizes and retry_after must be positive")
	}
	return nil
}

// memoryStore is the lasting memory store (erpapp.Keep): stored answers
// survive a reload.
type memoryStore struct{ *idempotency.Memory }

// Destruct implements caddy.Destructor: the memory is the garbage collector's.
func (*memoryStore) Destruct() error { return nil }

// clientMethod is the method the client sent (a dialect may have rewritten r's).
func clientMethod(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.Method != "" {
		return orig.Method
	}
	return r.Method
}

// clientPath is the path the client asked for.
func clientPath(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.RequestURI()
	}
	return r.URL.RequestURI()
}

func badKey(msg string) error {
	return caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest, Field: HeaderKey, Message: msg})
}

// ServeHTTP answers a keyed POST or PATCH from the store or records its answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	vals, ok := r.Header[HeaderKey]
	if !ok {
		return next.ServeHTTP(w, r)
	}
	method := clientMethod(r)
	if method != http.MethodPost && method != http.MethodPatch {
		return next.ServeHTTP(w, r)
	}
	if len(vals) != 1 {
		return badKey("send one Idempotency-Key")
	}
	key := vals[0]
	if !idempotency.ValidKey(key) {
		return badKey("an Idempotency-Key is 1 to 255 printable ASCII characters")
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	company := ""
	if repl != nil {
		company = repl.ReplaceAll(h.Company, "")
	}
	if company == "" {
		// placed before erp_auth, or a route without a company: never a shared bucket
		return caddyhttp.Error(http.StatusInternalServerError, errors.New("erp_idempotency: no company for the request (is it after erp_auth?)"))
	}

	body, err := readBody(r, h.MaxRequest)
	if err != nil {
		return err
	}
	fp := idempotency.Fingerprint(method, clientPath(r), body)
	skey := company + ":" + key

	sctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	res, err := h.store.Begin(sctx, skey, fp)
	cancel()
	if err != nil {
		h.logger.Error("idempotency store unavailable", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("the idempotency store is unavailable; retry with the same key"))
	}
	switch res.State {
	case idempotency.Replay:
		return replay(w, r, res.Record)
	case idempotency.InFlight:
		return caddyhttp.Error(http.StatusConflict, &contract.Error{Status: http.StatusConflict, Code: contract.CodeConflict, Field: HeaderKey,
			Message: "a request with this Idempotency-Key is still being processed", Header: http.Header{"Retry-After": {strconv.Itoa(h.RetryAfter)}}})
	case idempotency.Mismatch:
		return caddyhttp.Error(http.StatusUnprocessableEntity, &contract.Error{Status: http.StatusUnprocessableEntity, Code: contract.CodeValidationFailed, Field: HeaderKey,
			Message: "this Idempotency-Key was used for a different request (method, path or body)"})
	}

	rec := &tee.Writer{ResponseWriter: w, Max: int64(h.MaxEntry)}
	err = next.ServeHTTP(rec, r)
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.timeout)
	defer dcancel()
	if err != nil || !rec.Kept() || rec.Status() >= 500 {
		if rec.Overflow() {
			h.logger.Warn("idempotency: answer too large to store; key released", zap.Int("max_entry", h.MaxEntry))
		}
		if rerr := h.store.Release(dctx, skey, res.Token); rerr != nil {
			h.logger.Warn("idempotency: release", zap.Error(rerr))
		}
		return err
	}
	if cerr := h.store.Complete(dctx, skey, res.Token, &idempotency.Record{Status: rec.Status(), Header: storedOf(rec.Sent()), Body: rec.Body()}); cerr != nil {
		h.logger.Warn("idempotency: answer not stored", zap.Error(cerr))
	}
	return nil
}

// readBody reads r's body whole (at most max bytes, else 413) and puts it
// back for the proxy.
func readBody(r *http.Request, max int) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return nil, caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest, Message: "could not read the request body"})
	}
	if len(body) > max {
		return nil, caddyhttp.Error(http.StatusRequestEntityTooLarge, &contract.Error{Status: http.StatusRequestEntityTooLarge, Code: contract.CodePayloadTooLarge,
			Message: "a request with an Idempotency-Key may have at most " + strconv.Itoa(max) + " bytes of body"})
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return body, nil
}

// replay writes a stored answer through the rest of the chain's writers
// (erp_envelope translates it as it did the first time). The write's
// business event was emitted the first time: not again.
func replay(w http.ResponseWriter, r *http.Request, rec *idempotency.Record) error {
	caddyhttp.SetVar(r.Context(), contract.VarEventSink, nil)
	hdr := w.Header()
	for k, v := range rec.Header {
		hdr[k] = append([]string(nil), v...)
	}
	hdr[HeaderReplayed] = []string{"true"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(rec.Body))}
	w.WriteHeader(rec.Status)
	_, err := w.Write(rec.Body)
	return err
}

// storedHeaders are the backend headers a replay repeats: those that
// describe the answer. Hop-by-hop, Date, the edge's own (rate limits,
// versions: set again on the retry) and cookies are not.
var storedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Language", "Location", "Content-Location", "Etag", "Last-Modified", "Link", "Preference-Applied"}

// storedOf is the part of an answer's headers a replay repeats.
func storedOf(h http.Header) http.Header {
	out := make(http.Header, 4)
	for _, k := range storedHeaders {
		if v, ok := h[k]; ok {
			out[k] = v
		}
	}
	return out
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
