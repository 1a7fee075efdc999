// Package bulk is the erp_bulk handler: it serves
// `GET /api/{version}/{backend}/export?format=ndjson|csv`, the whole
// collection (with the usual filter and sort) streamed one page at a time.
// The request reaches it through erp_version's sub-resource seam
// (caddymodules/internal/subres); the formats are internal/export's. Of
// caddymodules it imports only the erp app and caddymodules/internal/*.
package bulk

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/assertion"
	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/export"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves a backend's export. Placed after erp_quota and before
// reverse_proxy { dynamic erp } inside `handle /api/*`:
//
//	erp_quota …
//	erp_bulk
//	reverse_proxy { dynamic erp }
//
// For an export it fetches the collection page after page (page=1,2,… at
// page_size records) by rewriting a GET of the collection with the
// backend's dialect and sending it through the rest of the chain (the
// proxy), reads each answer with the dialect's translator and writes its
// records as they come (internal/export), flushing after every page: memory
// holds one page, whatever the collection's size. It stops after the page
// whose pagination says has_next false (or a page without pagination, or an
// empty page).
//
// Quota: every page is one request. erp_quota counted the export request
// itself, which stands for the first page; each further page is charged
// (erpapp.Quota.Charge, 1) before it is fetched.
//
// Errors: before the first byte is sent, a bad query (400 BAD_REQUEST: an
// unknown format, page, limit or cursor given: the export is always the
// whole collection), a refused charge or a failed page is the envelope's
// error. After, the answer cannot change any more: the stream is aborted
// (the connection is cut without the final chunk), so a client never takes
// a cut export for a whole one.
type Handler struct {
	// PageSize is the number of records fetched per page, 1..200. Default 200.
	PageSize int `json:"page_size,omitempty"`

	quota  func() erpapp.Quota // the app's, read per request: erp_quota may provision after us
	logger *zap.Logger
	// signer renews the edge assertion erp_authz put on the request when
	// it nears its end (it lives 60 s; an export may take longer).
	signer *assertion.Signer
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_bulk",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision reads the erp app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.PageSize == 0 {
		h.PageSize = 200
	}
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.quota = app.Quota
	h.signer = assertion.New(app, h.logger, app.Refusals().For(h.logger))
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.PageSize < 1 || h.PageSize > 200 {
		return errBadPageSize
	}
	return nil
}

var errBadPageSize = errors.New("erp_bulk: page_size must be 1..200")

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rt := subres.Claim(r, subres.OpExport)
	if rt == nil {
		return next.ServeHTTP(w, r)
	}
	return h.export(w, r, next, rt)
}

func badRequest(field, msg string) error {
	return caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest, Message: msg, Field: field})
}

func (h *Handler) export(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rt *subres.Route) error {
	if r.Method != http.MethodGet {
		return caddyhttp.Error(http.StatusMethodNotAllowed, &contract.Error{Status: http.StatusMethodNotAllowed, Code: contract.CodeBadRequest,
			Message: "an export is read with GET", Header: http.Header{"Allow": {"GET"}}})
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "ndjson"
	}
	ctype, ok := export.Formats[format]
	if !ok || len(q["format"]) > 1 {
		return badRequest("format", "format must be ndjson or csv")
	}
	for _, p := range []string{"page", "limit", "cursor"} {
		if _, ok := q[p]; ok {
			return badRequest(p, "an export is the whole collection: "+p+" is not accepted (filter and sort are)")
		}
	}
	q.Del("format")
	base := q.Encode()
	if base != "" {
		base += "&"
	}
	base += "limit=" + strconv.Itoa(h.PageSize) + "&page="

	pw := &pageWriter{hdr: http.Header{}}
	progress := export.ProgressFrom(r.Context())
	var out export.Writer
	rc := http.NewResponseController(w)
	for page := 1; ; page++ {
		if page > 1 {
			if quota := h.quota(); quota != nil {
				if ce := quota.Charge(discardHeaders{}, r, 1); ce != nil {
					return h.fail(out, r, ce, page)
				}
			}
		}
		res, err := h.fetch(r, next, rt, base+strconv.Itoa(page), pw)
		if err != nil {
			return h.fail(out, r, err, page)
		}
		if out == nil {
			hdr := w.Header()
			hdr.Set("Content-Type", ctype)
			hdr.Set("Content-Disposition", `attachment; filename="`+rt.Target.Backend+"."+format+`"`)
			hdr.Set("Cache-Control", "no-store")
			caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
			caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
			w.WriteHeader(http.StatusOK)
			out = export.New(format, w)
		}
		n, err := out.WritePage(res.Data)
		if progress != nil {
			progress.Rows.Add(int64(n))
		}
		if err != nil {
			return h.fail(out, r, err, page)
		}
		if err := out.Flush(); err != nil {
			return h.fail(out, r, err, page)
		}
		_ = rc.Flush()
		if n == 0 || res.Pagination == nil || !res.Pagination.HasNext {
			return nil
		}
	}
}

// fetch gets one page of the collection through the rest of the chain and
// reads it with the dialect's translator.
func (h *Handler) fetch(r *http.Request, next caddyhttp.Handler, rt *subres.Route, rawQuery string, pw *pageWriter) (envelope.Result, error) {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.Body, req.ContentLength = http.NoBody, 0
	u := *r.URL
	u.RawQuery = rawQuery
	req.URL = &u
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "Accept-Encoding"} {
		req.Header.Del(k)
	}
	// The assertion erp_authz signed lives 60 s: every page carries a
	// fresh enough one (the signer's cache reuses it until near its end;
	// it never outlives the credential, whose expiry ends the export).
	if _, ok := req.Header[hdrAssertion]; ok && h.signer != nil {
		tok, err := h.signer.For(r, rt.Target.Backend)
		if err != nil {
			return envelope.Result{}, err
		}
		if tok != "" {
			req.Header[hdrAssertion] = []string{tok}
		}
	}
	tr, err := rt.Dialect.Rewrite(req, rt.CollectionTarget())
	if err != nil {
		return envelope.Result{}, err
	}
	pw.reset()
	if err := next.ServeHTTP(pw, req); err != nil {
		return envelope.Result{}, err
	}
	res := tr.Translate(&envelope.Answer{Request: req, Status: pw.status, Header: pw.hdr, Body: pw.buf.Bytes()})
	if res.Status >= 300 || len(res.Errors) > 0 {
		e := &contract.Error{Status: res.Status, Code: contract.CodeForStatus(res.Status), Message: "the backend refused a page of the export"}
		if len(res.Errors) > 0 {
			e.Code, e.Message = res.Errors[0].Code, res.Errors[0].Message
		}
		if e.Status < 400 {
			e.Status, e.Code = http.StatusBadGateway, contract.CodeUpstreamUnavailable
		}
		return envelope.Result{}, e
	}
	return res, nil
}

var hdrAssertion = http.CanonicalHeaderKey(contract.HeaderAssertion)

// fail ends an export: with the error's envelope when nothing was sent
// yet, else by aborting the stream (the client sees a cut transfer).
func (h *Handler) fail(out export.Writer, r *http.Request, err error, page int) error {
	if out == nil {
		if ce, ok := contract.AsError(err); ok {
			return caddyhttp.Error(ce.Status, ce)
		}
		return err
	}
	if p := export.ProgressFrom(r.Context()); p != nil {
		p.Aborted.Store(true)
	}
	h.logger.Warn("export aborted after it started", zap.Int("page", page), zap.Error(err),
		zap.String("backend", caddyhttp.GetVar(r.Context(), contract.VarBackend).(string)))
	panic(http.ErrAbortHandler)
}

// pageWriter buffers one page's answer; reused page after page.
type pageWriter struct {
	hdr    http.Header
	status int
	buf    bytes.Buffer
}

func (p *pageWriter) reset() {
	clear(p.hdr)
	p.status = 0
	p.buf.Reset()
}

func (p *pageWriter) Header() http.Header { return p.hdr }

func (p *pageWriter) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *pageWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.buf.Write(b)
}

// discardHeaders takes the rate-limit headers a page's charge sets: the
// answer's headers were sent with the first page.
type discardHeaders struct{}

func (discardHeaders) Header() http.Header         { return http.Header{} }
func (discardHeaders) Write(b []byte) (int, error) { return len(b), nil }
func (discardHeaders) WriteHeader(int)             {}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
