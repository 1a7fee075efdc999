// Package importer is the erp_import handler: `POST /api/{v}/{backend}/import`.
// It streams an NDJSON or CSV body (chosen by Content-Type)
// through internal/importer and creates each row by re-entering Caddy's
// server with `POST /api/{v}/{backend}` and the caller's credential, so
// every row passes the whole chain: authentication, the {backend}:write
// scope, the plan's rate and quota (each row counts), the version and the
// backend's dialect. It owns no state; of caddymodules it imports only
// caddyfileutil.
package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/importer"
	"github.com/erpgate/erpgate/internal/reqpath"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_import", parseCaddyfile)
	// Before erp_auth (After basic_auth): erp_auth removes the credential
	// each row's create needs. Inside `handle /api/*` it then also precedes
	// erp_quota: the import itself is not counted, its rows are.
	httpcaddyfile.RegisterDirectiveOrder("erp_import", httpcaddyfile.Before, "basic_auth")
}

// Handler answers imports:
//
//	@import {
//		method POST
//		path_regexp ^/api/(v[0-9.]+/)?[^/]+/import$
//	}
//	handle @import {
//		erp_import
//	}
//
// placed before `handle /api/*`, with no erp_auth in front: erp_auth
// removes the credential it verified from the request (the backend never
// sees it), and each row's create needs it to pass the whole chain, which
// does every check (authentication, scope, quota). erp_import itself
// refuses a request with no credential (401) or an ambiguous one (400),
// and a row refused with 401 or 429 stops the import. A request that is not
// POST {prefix}[{version}/]{backend}/import goes to the next handler, so
// erp_import may also sit in front of a route that serves other paths.
//
// The answer (envelope data), 200 once the body could be read as the
// format it claims, whatever each row's fate:
//
//	{"dry_run": false, "rows": 3, "created": 2, "failed": 1,
//	 "results": [{"line": 1, "status": 201, "id": "cus_…"},
//	             {"line": 2, "status": 422, "errors": [{"code": "VALIDATION_FAILED", …}]}, …],
//	 "results_omitted": 0, "stopped": {"line": …, "code": …, "message": …}}
//
// `?dry_run=true` checks every row at the edge (one JSON object per
// NDJSON line; CSV cells per the header, typed by `name:number|bool|json`
// header suffixes) and creates nothing; it sends nothing to the backend
// and counts nothing against the quota (the demo has no dry-run create to
// ask). A row refused by the rate or quota (429) stops the import: the
// rows after it are not tried (`stopped`).
type Handler struct {
	// Prefix is the API's path prefix, without a trailing slash. Default: /api.
	Prefix string `json:"prefix,omitempty"`
	// MaxRowSize bounds one row (a line of NDJSON, a CSV record) in bytes.
	// Default: 64 KiB.
	MaxRowSize int `json:"max_row_size,omitempty"`
	// MaxRows bounds the rows of one import. Default: 100000.
	MaxRows int `json:"max_rows,omitempty"`
	// MaxParallel is how many rows are created at once. Default: 4.
	MaxParallel int `json:"max_parallel,omitempty"`
	// MaxResults bounds the answer's results list. Default: 1000.
	MaxResults int `json:"max_results,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_import",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults.
func (h *Handler) Provision(caddy.Context) error {
	if h.Prefix == "" {
		h.Prefix = "/api"
	}
	if h.MaxRowSize == 0 {
		h.MaxRowSize = 64 << 10
	}
	if h.MaxRows == 0 {
		h.MaxRows = 100000
	}
	if h.MaxParallel == 0 {
		h.MaxParallel = 4
	}
	if h.MaxResults == 0 {
		h.MaxResults = 1000
	}
	return nil
}

// Validate refuses impossible bounds.
func (h *Handler) Validate() error {
	if !reqpath.Plain(h.Prefix) {
		return errorf("prefix must be a plain path without a trailing slash, such as /api")
	}
	if h.MaxRowSize < 1 || h.MaxRows < 1 || h.MaxParallel < 1 || h.MaxParallel > 64 || h.MaxResults < 0 {
		return errorf("max_row_size, max_rows and max_parallel (at most 64) must be positive, max_results not negative")
	}
	return nil
}

type configError string

func (e configError) Error() string { return "erp_import: " + string(e) }

func errorf(s string) error { return configError(s) }

// target returns the collection path an import path names:
// {prefix}[{v}/]{backend}/import → {prefix}[{v}/]{backend}.
func (h *Handler) target(r *http.Request) (string, bool) {
	var buf [reqpath.MaxSegments]string
	segs, res := reqpath.Split(r.URL.EscapedPath(), h.Prefix, buf[:])
	if res != reqpath.OK || len(segs) < 2 || len(segs) > 3 || segs[len(segs)-1] != "import" {
		return "", false
	}
	if len(segs) == 3 && !looksLikeVersion(segs[0]) {
		return "", false
	}
	return h.Prefix + "/" + strings.Join(segs[:len(segs)-1], "/"), true
}

// looksLikeVersion: v<digits>[.<digits>], as erp_version reads a path.
func looksLikeVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path, ok := h.target(r)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	// Served here: when erp_version ran first it left the import as a
	// reserved sub-resource (caddymodules/internal/subres), claimed now.
	subres.Claim(r, subres.OpImport)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, contract.NewError(http.StatusMethodNotAllowed, contract.CodeBadRequest, "an import is a POST"))
	}
	format, ok := importer.FormatFor(r.Header.Get("Content-Type"))
	if !ok {
		return caddyhttp.Error(http.StatusUnsupportedMediaType, contract.NewError(http.StatusUnsupportedMediaType, contract.CodeBadRequest,
			"an import's Content-Type is application/x-ndjson or text/csv"))
	}
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		var err error
		if dry, err = strconv.ParseBool(v); err != nil {
			return caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest,
				Message: "dry_run must be true or false", Field: "dry_run"})
		}
	}
	// The rows' creates authenticate the caller; a request without any
	// credential is refused here, before its body is read.
	cred, err := credential.FromRequest(r)
	if err != nil {
		ce := credential.Refusal(err)
		return caddyhttp.Error(ce.Status, ce)
	}
	if cred.Kind == credential.None && r.Header.Get("Cookie") == "" {
		return caddyhttp.Error(http.StatusUnauthorized, contract.NewError(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required"))
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil && !dry {
		return caddyhttp.Error(http.StatusInternalServerError, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "internal error"))
	}
	rd, err := importer.NewReader(format, r.Body, h.MaxRowSize)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, err.Error()))
	}
	c := &creator{srv: srv, parent: r, path: path}
	sum := importer.Run(r.Context(), rd, c.create, importer.Options{
		Parallel: h.MaxParallel, MaxResults: h.MaxResults, DryRun: dry, MaxRows: h.MaxRows,
	})

	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestID))
	}
	w.Header().Set(contract.HeaderRequestID, id)
	w.Header().Set("Cache-Control", "no-store")
	m := env.Meta{Timestamp: time.Now(), RequestID: id}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		m.CompanyID, _ = repl.GetString("http.auth.user.company_id")
		m.UserID, _ = repl.GetString("http.auth.user.id")
	}
	env.WriteSuccess(w, http.StatusOK, sum, &m, nil)
	return nil
}

// forwarded are the request headers each row's create carries over: the
// credential (a bearer token, an API key, or the browser's cookies with
// their CSRF token), the asked version, and what names the client.
var forwarded = []string{
	"Authorization", "X-Api-Key", "Cookie", "X-Csrf-Token",
	"Api-Version", "Accept", "Accept-Language", "User-Agent",
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip",
}

// maxAnswer bounds what is kept of one row's answer: enough for an
// envelope's id and errors.
const maxAnswer = 64 << 10

// creator re-enters the server with one create per row.
type creator struct {
	srv    *caddyhttp.Server
	parent *http.Request
	path   string
}

func (c *creator) create(ctx context.Context, line int, body []byte) importer.Result {
	p := c.parent
	sub, err := http.NewRequestWithContext(ctx, http.MethodPost, c.path, bytes.NewReader(body))
	if err != nil {
		return failed(http.StatusInternalServerError, contract.CodeInternal, "the row's request cannot be made")
	}
	sub.Host, sub.RemoteAddr, sub.TLS = p.Host, p.RemoteAddr, p.TLS
	sub.Proto, sub.ProtoMajor, sub.ProtoMinor = p.Proto, p.ProtoMajor, p.ProtoMinor
	sub.RequestURI = c.path
	sub.ContentLength = int64(len(body))
	for _, k := range forwarded {
		if v, ok := p.Header[k]; ok {
			sub.Header[k] = v
		}
	}
	sub.Header.Set("Content-Type", "application/json")
	if id := p.Header.Get(contract.HeaderRequestID); id != "" && len(id) < 100 {
		sub.Header.Set(contract.HeaderRequestID, id+"-"+strconv.Itoa(line))
	}
	rec := &recorder{header: http.Header{}}
	c.srv.ServeHTTP(rec, sub)
	return rec.result()
}

func failed(status int, code, msg string) importer.Result {
	return importer.Result{Status: status, Errors: []importer.Problem{{Code: code, Message: msg}}}
}

// recorder keeps a row's status and the first maxAnswer bytes of its answer.
type recorder struct {
	header http.Header
	status int
	body   []byte
	over   bool
}

func (rr *recorder) Header() http.Header { return rr.header }

func (rr *recorder) WriteHeader(code int) {
	if rr.status == 0 && code >= 200 {
		rr.status = code
	}
}

func (rr *recorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	if room := maxAnswer - len(rr.body); room < len(b) {
		rr.over = true
		rr.body = append(rr.body, b[:max(room, 0)]...)
	} else {
		rr.body = append(rr.body, b...)
	}
	return len(b), nil
}

// answer is what a row's result needs of an envelope.
type answer struct {
	Data struct {
		ID json.RawMessage `json:"id"`
	} `json:"data"`
	Errors []importer.Problem `json:"errors"`
}

func (rr *recorder) result() importer.Result {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	res := importer.Result{Status: rr.status}
	var a answer
	if rr.over || json.Unmarshal(rr.body, &a) != nil {
		if !res.OK() {
			res.Errors = []importer.Problem{{Code: contract.CodeForStatus(rr.status), Message: http.StatusText(rr.status)}}
		}
		return res
	}
	if res.OK() {
		var s string
		if json.Unmarshal(a.Data.ID, &s) == nil {
			res.ID = s
		} else if len(a.Data.ID) > 0 && a.Data.ID[0] != 'n' {
			res.ID = string(a.Data.ID) // a number
		}
		return res
	}
	res.Errors = a.Errors
	if len(res.Errors) == 0 {
		res.Errors = []importer.Problem{{Code: contract.CodeForStatus(rr.status), Message: http.StatusText(rr.status)}}
	}
	return res
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_import [{
//		prefix       /api
//		max_row_size 64KiB
//		max_rows     100000
//		max_parallel 4
//		max_results  1000
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		switch name {
		case "prefix":
			h.Prefix = value
			return nil
		case "max_row_size":
			n, err := humanize.ParseBytes(value)
			if err != nil || n < 1 || n > 16<<20 {
				return d.Errf("max_row_size must be a size between 1B and 16MiB")
			}
			h.MaxRowSize = int(n)
			return nil
		case "max_rows", "max_parallel", "max_results":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return d.Errf("%s must be a positive integer", name)
			}
			switch name {
			case "max_rows":
				h.MaxRows = n
			case "max_parallel":
				h.MaxParallel = n
			default:
				h.MaxResults = n
			}
			return nil
		}
		return d.Errf("unknown subdirective %q", name)
	})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
