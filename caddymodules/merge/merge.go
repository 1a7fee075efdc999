// Package merge is the erp_merge handler: the three-way merge of `PATCH`
// with `If-Match` and `Prefer: merge=auto` (DESIGN.md's data plane). It
// keeps the item representations the edge served, by company, path and
// ETag (Redis when the erp app has one, else a bounded memory LRU), and
// when the backend refuses such a PATCH with 412 it fetches the current
// version and merges with internal/merge.
package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/tee"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/merge"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is erp_merge. Place it inside `handle /api/*` after erp_auth
// and erp_quota, before reverse_proxy:
//
//   - it records every item answer with a strong ETag — a GET's 200 and a
//     PUT's, PATCH's or POST's 2xx — by (company, path, ETag), for `ttl`,
//     at most `max_entries` (memory) and `max_body` bytes each;
//   - a PATCH with one strong `If-Match` tag and `Prefer: merge=auto`
//     that the backend answers 412 is merged: the base is the recorded
//     representation of that tag (none: 412 CONFLICT, the client must read
//     again), the current one is fetched with a GET through the rest of
//     the chain (same identity; a 404 is answered as the backend's 404:
//     the resource was deleted, there is nothing to merge into), and RFC
//     7396 is applied three ways (internal/merge). No conflict: the
//     client's changes are sent again with `If-Match: <current ETag>` and
//     the answer carries `meta.merged: true` and `Preference-Applied:
//     merge=auto`. Conflicts: 409 CONFLICT, one error per field with
//     `context` {base, current, proposed}.
//
// The merge works on the backend's own JSON (what the REST dialect
// passes); a body that is not a JSON object is not merged (the 412 stays).
type Handler struct {
	// TTL is how long a representation stays a possible base. Default 1h.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// MaxEntries bounds the memory store. Default 10000.
	MaxEntries int `json:"max_entries,omitempty"`
	// MaxPerCompany bounds one company's bases, in either store (its
	// oldest go first). Default 1000.
	MaxPerCompany int `json:"max_per_company,omitempty"`
	// MaxBody is the largest representation (and patch) kept or merged, in
	// bytes. Default 256 KiB.
	MaxBody int64 `json:"max_body,omitempty"`

	store  Store
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_merge",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision picks the store: the app's Redis, else memory.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.defaults()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	if rdb := app.RedisClient(); rdb != nil {
		h.store = &redisStore{rdb: rdb, prefix: app.KeyPrefix, ttl: time.Duration(h.TTL), perCompany: h.MaxPerCompany}
	} else {
		h.store = newMemoryStore(time.Duration(h.TTL), h.MaxEntries, h.MaxPerCompany, h.MaxBody*int64(h.MaxEntries))
	}
	return nil
}

func (h *Handler) defaults() {
	if h.TTL <= 0 {
		h.TTL = caddy.Duration(time.Hour)
	}
	if h.MaxEntries <= 0 {
		h.MaxEntries = 10000
	}
	if h.MaxPerCompany <= 0 {
		h.MaxPerCompany = 1000
	}
	if h.MaxBody <= 0 {
		h.MaxBody = 256 << 10
	}
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.MaxBody < 0 || h.MaxEntries < 0 || h.MaxPerCompany < 0 || h.TTL < 0 {
		return errors.New("erp_merge: ttl, max_entries, max_per_company and max_body must not be negative")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	company := companyOf(r)
	if company == "" {
		return next.ServeHTTP(w, r)
	}
	switch r.Method {
	case http.MethodPatch:
		if tag, ok := mergeRequested(r); ok {
			return h.patch(w, r, next, company, tag)
		}
	case http.MethodGet, http.MethodPut, http.MethodPost:
	default:
		return next.ServeHTTP(w, r)
	}
	// only what can become a base is copied: a 2xx JSON item with a strong
	// ETag (a list, or a GET answered from elsewhere, costs no copy)
	tw := &tee.Writer{ResponseWriter: w, Max: h.MaxBody, Keep: func(status int, hdr http.Header) bool {
		return status >= 200 && status <= 299 && strongTag(hdr.Get("ETag")) && isJSON(hdr.Get("Content-Type"))
	}}
	err := next.ServeHTTP(tw, r)
	if err == nil && tw.Kept() {
		h.record(r, company, tw.Status(), tw.Sent(), tw.Body(), false)
	}
	return err
}

// record keeps an item answer as a possible base.
func (h *Handler) record(r *http.Request, company string, status int, hdr http.Header, body []byte, over bool) {
	if over || len(body) == 0 || status < 200 || status > 299 || (r.Method == http.MethodGet && status != http.StatusOK) {
		return
	}
	tag := hdr.Get("ETag")
	if !strongTag(tag) || !isJSON(hdr.Get("Content-Type")) || body[0] != '{' {
		return
	}
	path := r.URL.Path
	if r.Method == http.MethodPost { // a create: the item's path is the collection's plus the new id
		loc := hdr.Get("Location")
		i := strings.LastIndexByte(loc, '/')
		if i < 0 || i == len(loc)-1 {
			return
		}
		path = strings.TrimSuffix(path, "/") + loc[i:]
	}
	if err := h.store.Put(r.Context(), company, baseKey(company, path, tag), body); err != nil {
		h.logger.Warn("erp_merge: keeping a base failed", zap.Error(err))
	}
}

// mergeRequested reports whether r asks for a merge, and its one tag.
func mergeRequested(r *http.Request) (string, bool) {
	if !preferMergeAuto(r.Header.Values("Prefer")) {
		return "", false
	}
	vals := r.Header.Values("If-Match")
	if len(vals) != 1 {
		return "", false
	}
	tag := strings.TrimSpace(vals[0])
	return tag, strongTag(tag)
}

// preferMergeAuto finds the preference merge=auto (RFC 7240).
func preferMergeAuto(values []string) bool {
	for _, v := range values {
		for pref := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(pref, ";")
			k, val, _ := strings.Cut(strings.TrimSpace(name), "=")
			if strings.EqualFold(strings.TrimSpace(k), "merge") && strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "auto") {
				return true
			}
		}
	}
	return false
}

// strongTag reports whether tag is one strong entity tag.
func strongTag(tag string) bool {
	return len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' && !strings.Contains(tag[1:len(tag)-1], `"`)
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, company, tag string) error {
	if r.ContentLength > h.MaxBody {
		return next.ServeHTTP(w, r) // too large to merge: an ordinary conditional PATCH
	}
	patchBody, err := io.ReadAll(io.LimitReader(r.Body, h.MaxBody+1))
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	if int64(len(patchBody)) > h.MaxBody {
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(patchBody), r.Body))
		return next.ServeHTTP(w, r)
	}
	first, err := h.send(r, next, patchBody, tag)
	if err != nil {
		return err
	}
	if first.status != http.StatusPreconditionFailed {
		return h.pass(w, r, company, first)
	}
	baseBody, ok, err := h.store.Get(r.Context(), company, baseKey(company, r.URL.Path, tag))
	if err != nil { // nothing was applied: the client may send it again
		h.logger.Warn("erp_merge: reading a base failed", zap.Error(err))
		return depfail.Error("the merge store is unavailable; send the PATCH again shortly")
	}
	if !ok {
		return &contract.Error{Status: http.StatusPreconditionFailed, Code: contract.CodeConflict,
			Message: "the resource has changed and the version in If-Match is unknown to the edge: read it again before merging",
			Context: map[string]any{"reason": "unknown_base", "if_match": tag}}
	}
	cur, err := h.fetch(r, next)
	if err != nil {
		return err
	}
	curTag := cur.header.Get("ETag")
	if cur.status != http.StatusOK || !strongTag(curTag) {
		return h.pass(w, r, company, cur) // 404: deleted since; anything else as the backend said
	}
	base, current, patch, ok := decodeThree(baseBody, cur.body, patchBody)
	if !ok {
		return h.pass(w, r, company, first) // not objects: no member-wise merge
	}
	rebased, conflicts := merge.ThreeWay(base, current, patch)
	if len(conflicts) > 0 {
		writeConflicts(w, r, conflicts, curTag)
		return nil
	}
	body, err := json.Marshal(rebased)
	if err != nil {
		return err
	}
	second, err := h.send(r, next, body, curTag)
	if err != nil {
		return err
	}
	if second.status >= 200 && second.status <= 299 {
		caddyhttp.SetVar(r.Context(), contract.VarMerged, true)
		second.header.Set("Preference-Applied", "merge=auto")
	}
	return h.pass(w, r, company, second)
}

// answer is a buffered answer of the rest of the chain.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// send runs the PATCH through the rest of the chain with body and If-Match.
func (h *Handler) send(r *http.Request, next caddyhttp.Handler, body []byte, ifMatch string) (*answer, error) {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("If-Match", ifMatch)
	return h.run(req, next)
}

// fetch GETs the current version with the request's identity.
func (h *Handler) fetch(r *http.Request, next caddyhttp.Handler) (*answer, error) {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Body = http.NoBody
	req.ContentLength = 0
	for _, k := range []string{"Content-Length", "Content-Type", "If-Match", "If-None-Match",
		"If-Modified-Since", "If-Unmodified-Since", "Prefer", "Idempotency-Key"} {
		req.Header.Del(k)
	}
	return h.run(req, next)
}

func (h *Handler) run(req *http.Request, next caddyhttp.Handler) (*answer, error) {
	bw := &bufWriter{header: make(http.Header)}
	if err := next.ServeHTTP(bw, req); err != nil {
		return nil, err
	}
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	return &answer{status: bw.status, header: bw.header, body: bw.buf.Bytes()}, nil
}

// pass writes a buffered answer to the client, and keeps it as a base.
func (h *Handler) pass(w http.ResponseWriter, r *http.Request, company string, a *answer) error {
	dst := w.Header()
	for k, v := range a.header {
		dst[k] = v
	}
	dst.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
	h.record(r, company, a.status, a.header, a.body, int64(len(a.body)) > h.MaxBody)
	return nil
}

func decodeThree(base, current, patch []byte) (b, c, p map[string]any, ok bool) {
	objs := make([]map[string]any, 3)
	for i, doc := range [][]byte{base, current, patch} {
		v, err := merge.Decode(doc)
		if err != nil {
			return nil, nil, nil, false
		}
		if objs[i], ok = v.(map[string]any); !ok {
			return nil, nil, nil, false
		}
	}
	return objs[0], objs[1], objs[2], true
}

// writeConflicts answers 409 CONFLICT in the envelope, one error per
// field, with the current ETag (the version to read again).
func writeConflicts(w http.ResponseWriter, r *http.Request, conflicts []merge.Conflict, curTag string) {
	errs := make([]env.Error, len(conflicts))
	for i, c := range conflicts {
		errs[i] = env.Error{Code: contract.CodeConflict, Field: c.Field,
			Message: fmt.Sprintf("%s was changed since your version", c.Field),
			Context: map[string]any{"base": c.Base, "current": c.Current, "proposed": c.Proposed}}
	}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	m := meta(r)
	body := env.AppendFailure(make([]byte, 0, 512), &m, errs...)
	hdr := w.Header()
	hdr.Set("Content-Type", env.ContentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("ETag", curTag)
	hdr.Set(contract.HeaderRequestIDKey, m.RequestID)
	w.WriteHeader(http.StatusConflict)
	_, _ = w.Write(body)
}

// meta is the envelope's meta for an answer erp_merge writes itself.
func meta(r *http.Request) env.Meta {
	m := env.Meta{Timestamp: time.Now()}
	m.RequestID, _ = caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	m.APIVersion, _ = caddyhttp.GetVar(r.Context(), contract.VarAPIVersion).(string)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		m.CompanyID = repl.ReplaceAll("{http.auth.user.company_id}", "")
		m.UserID = repl.ReplaceAll("{http.auth.user.id}", "")
	}
	return m
}

// companyOf is the caller's company ("" before authentication).
func companyOf(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	v, _ := repl.Get("http.auth.user.company_id")
	s, _ := v.(string)
	return s
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// bufWriter buffers a whole answer (at most the backend's item; bodies of
// merged requests are bounded by max_body on the way in).
type bufWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufWriter) Header() http.Header { return b.header }
func (b *bufWriter) WriteHeader(status int) {
	if b.status == 0 && (status < 100 || status > 199) {
		b.status = status
	}
}
func (b *bufWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
