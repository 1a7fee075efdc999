// Package exportjobs is the erp_export_jobs handler: exports run as jobs.
//
//	POST   /api/v1/exports                      {backend, version?, format?, filter?, sort?} → 202 {id, status, links}
//	GET    /api/v1/exports/{id}[?link_ttl=5m]   the job: status, rows, bytes, error; links.download once done
//	DELETE /api/v1/exports/{id}                 cancel a running job, remove a finished one and its file
//	GET    /api/v1/exports/{id}/download?company=…&expires=…&sig=…   the file, without a bearer
//
// A job is GET /api/[{version}/]{backend}/export (erp_bulk) run in the
// background: it re-enters the server with the caller's credential
// (kept by erp_export_credentials), so it passes the same chain as the
// streamed export — authentication, {backend}:read, the plan's rate and
// quota (every page counts), the dialect — and writes the answer to a file
// in the export directory. The records are in erpapp's Redis when it is
// configured (every instance sees every job), else in memory; the Caddy-free
// core (records, stores, links) is internal/exportjob.
package exportjobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/erpgate/erpgate/caddymodules/internal/keepcred"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/export"
	"github.com/erpgate/erpgate/internal/exportjob"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Prefix is where the jobs are served.
const Prefix = "/api/v1/exports"

// Handler serves export jobs. In Caddyfile.example:
//
//	@exports path /api/v1/exports /api/v1/exports/*
//	@exports_api not path_regexp ^/api/v1/exports/[^/]+/download$
//	handle @exports {
//		erp_export_credentials
//		erp_auth @exports_api {
//			authenticated_only
//		}
//		erp_export_jobs {
//			dir {env.ERP_EXPORT_DIR}
//		}
//	}
//
// The download needs no bearer (a link can be handed to a browser): its
// signature (HMAC-SHA256 over company, job and expiry) is the credential,
// until it expires. A tampered link is 403 FORBIDDEN, an expired one 410
// TOKEN_EXPIRED (GET the job again for a fresh link), a link to a job
// gone since is 410 NOT_FOUND.
//
// POST waits until the export's first page is in (at most start_wait):
// a refusal of the export (401, 403 without {backend}:read, 404, 400 for a
// bad filter or sort, 429) is the POST's answer and no job is left; else
// 202 with the job. Each company has at most max_active jobs queued or
// running (429 RATE_LIMITED beyond, with Retry-After). A finished job and
// its file are kept for retention, then removed (the janitor sweeps the
// directory). The file is written where the job runs: in a fleet, dir
// must be a volume every instance shares, or a download reaching another
// instance answers 410.
type Handler struct {
	// Dir is the directory of the export files. Default:
	// $TMPDIR/erpgate-exports.
	Dir string `json:"dir,omitempty"`
	// MaxActive bounds a company's queued and running jobs. Default: 2.
	MaxActive int `json:"max_active,omitempty"`
	// Retention is how long a finished job and its file are kept.
	// Default: 1h.
	Retention caddy.Duration `json:"retention,omitempty"`
	// LinkTTL is how long a download link is valid (never beyond the
	// retention). Default: 15m.
	LinkTTL caddy.Duration `json:"link_ttl,omitempty"`
	// LinkSecret keys the links' signatures; use a placeholder. Empty: a
	// key made at random, kept in Redis for every instance when Redis is
	// configured, else in this process's memory.
	LinkSecret string `json:"link_secret,omitempty"`
	// StartWait bounds how long POST waits for the export's first page.
	// Default: 30s.
	StartWait caddy.Duration `json:"start_wait,omitempty"`

	app    *erpapp.App
	mgr    *manager
	secret string
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_export_jobs",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and takes the lasting manager (no I/O but the
// directory's creation).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	h.Dir = repl.ReplaceKnown(h.Dir, "")
	if h.Dir == "" {
		h.Dir = filepath.Join(os.TempDir(), "erpgate-exports")
	}
	h.secret = repl.ReplaceKnown(h.LinkSecret, "")
	if h.MaxActive == 0 {
		h.MaxActive = 2
	}
	if h.Retention == 0 {
		h.Retention = caddy.Duration(time.Hour)
	}
	if h.LinkTTL == 0 {
		h.LinkTTL = caddy.Duration(15 * time.Minute)
	}
	if h.StartWait == 0 {
		h.StartWait = caddy.Duration(30 * time.Second)
	}
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	if err := h.Validate(); err != nil {
		return err
	}
	rdb := app.RedisClient()
	key := h.Dir + "|" + strconv.FormatBool(rdb != nil) + "|" + time.Duration(h.Retention).String()
	logger := h.logger
	h.mgr, err = erpapp.Keep(app, key, func(l *erpapp.Lasting) (*manager, error) {
		if err := os.MkdirAll(h.Dir, 0o700); err != nil {
			return nil, err
		}
		m := &manager{dir: h.Dir, instance: l.Instance(), logger: logger, running: map[string]context.CancelFunc{}}
		if rdb != nil {
			m.redis = &exportjob.Redis{Client: rdb, Prefix: app.KeyPrefix}
			m.store = m.redis
		} else {
			m.store = exportjob.NewMemory()
		}
		m.ctx, m.cancel = context.WithCancel(l.Context())
		m.wg.Add(1)
		go m.janitor(time.Duration(h.Retention))
		return m, nil
	})
	return err
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.MaxActive < 0 || h.Retention < 0 || h.LinkTTL < 0 || h.StartWait < 0 {
		return errors.New("erp_export_jobs: max_active, retention, link_ttl and start_wait must not be negative")
	}
	if h.secret != "" && len(h.secret) < 32 {
		return errors.New("erp_export_jobs: link_secret must be at least 32 characters")
	}
	return nil
}

func apiError(status int, code, msg, field string) error {
	return caddyhttp.Error(status, &contract.Error{Status: status, Code: code, Message: msg, Field: field})
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return next.ServeHTTP(w, r)
	}
	rest = strings.TrimPrefix(rest, "/")
	id, sub, _ := strings.Cut(rest, "/")
	switch {
	case id == "":
		if r.Method != http.MethodPost {
			return notAllowed(w, "POST")
		}
		return h.create(w, r)
	case sub == "download":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return notAllowed(w, "GET, HEAD")
		}
		return h.download(w, r, id)
	case sub != "" || !exportjob.ValidID(id):
		return apiError(http.StatusNotFound, contract.CodeNotFound, "no such export job", "")
	case r.Method == http.MethodGet:
		return h.status(w, r, id)
	case r.Method == http.MethodDelete:
		return h.remove(w, r, id)
	}
	return notAllowed(w, "GET, DELETE")
}

func notAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return apiError(http.StatusMethodNotAllowed, contract.CodeBadRequest, "method not allowed here", "")
}

// caller is the verified identity erp_auth left.
func caller(r *http.Request) (company, user string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		company, _ = repl.GetString("http.auth.user.company_id")
		user, _ = repl.GetString("http.auth.user.id")
	}
	return company, user
}

// createBody is POST /api/v1/exports's body: GET …/export's parameters.
type createBody struct {
	Backend string `json:"backend"`
	Version string `json:"version"`
	Format  string `json:"format"`
	Filter  string `json:"filter"`
	Sort    string `json:"sort"`
}

func (h *Handler) readBody(r *http.Request) (createBody, error) {
	var b createBody
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<10+1))
	if err != nil {
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "the body cannot be read", "")
	}
	if len(raw) > 16<<10 {
		return b, apiError(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, "the body is larger than 16 KiB", "")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		field := ""
		if _, f, ok := strings.Cut(err.Error(), "unknown field "); ok {
			field = strings.Trim(f, `"`)
			return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "unknown field "+strconv.Quote(field), field)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, te.Field+" must be a string", te.Field)
		}
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be a JSON object", "")
	}
	if dec.More() {
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be one JSON object", "")
	}
	switch {
	case b.Backend == "":
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "backend is required", "backend")
	case h.app.Backend(b.Backend) == nil:
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "no backend "+strconv.Quote(b.Backend)+"; backends: "+strings.Join(h.app.BackendNames(), ", "), "backend")
	case b.Version != "" && h.app.Backend(b.Backend).Version(b.Version) == nil:
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "the backend has no version "+strconv.Quote(b.Version), "version")
	case len(b.Filter) > 4096:
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "filter is longer than 4096 bytes", "filter")
	case len(b.Sort) > 256:
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "sort is longer than 256 bytes", "sort")
	}
	if b.Format == "" {
		b.Format = "ndjson"
	}
	if _, ok := export.Formats[b.Format]; !ok {
		return b, apiError(http.StatusBadRequest, contract.CodeBadRequest, "format must be ndjson or csv", "format")
	}
	return b, nil
}

// forwarded are the request headers the job's export carries besides the
// credential: what names the client and its language.
var forwarded = []string{"Accept-Language", "User-Agent", "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) error {
	company, user := caller(r)
	creds := keepcred.Kept(r)
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if company == "" || creds == nil || srv == nil {
		h.logger.Error("erp_export_jobs: POST needs erp_export_credentials and erp_auth before it")
		return apiError(http.StatusInternalServerError, contract.CodeInternal, "internal error", "")
	}
	b, err := h.readBody(r)
	if err != nil {
		return err
	}
	now := time.Now()
	retention := time.Duration(h.Retention)
	j := &exportjob.Job{ID: exportjob.NewID(), Company: company, User: user, Backend: b.Backend, Version: b.Version,
		Format: b.Format, Filter: b.Filter, Sort: b.Sort, Status: exportjob.Queued, Created: now, Instance: h.mgr.instance}
	switch err := h.mgr.store.Create(r.Context(), j, h.MaxActive, lease, lease+retention); {
	case errors.Is(err, exportjob.ErrTooMany):
		w.Header().Set("Retry-After", "10")
		return caddyhttp.Error(http.StatusTooManyRequests, &contract.Error{Status: http.StatusTooManyRequests, Code: contract.CodeRateLimited,
			Message: "the company has " + strconv.Itoa(h.MaxActive) + " export jobs running: wait for one to finish",
			Context: map[string]any{"max_active": h.MaxActive}})
	case err != nil:
		h.logger.Error("erp_export_jobs: the job store failed", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("export jobs are temporarily unavailable"))
	}

	path := "/api/"
	if b.Version != "" {
		path += b.Version + "/"
	}
	path += b.Backend + "/export"
	q := url.Values{"format": {b.Format}}
	if b.Filter != "" {
		q.Set("filter", b.Filter)
	}
	if b.Sort != "" {
		q.Set("sort", b.Sort)
	}
	hdr := http.Header{}
	for k, v := range creds {
		hdr[k] = v
	}
	for _, k := range forwarded {
		if v, ok := r.Header[k]; ok {
			hdr[k] = v
		}
	}
	if id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); id != "" {
		hdr.Set(contract.HeaderRequestID, id) // the job's export is logged under the POST's request id
	}
	started := make(chan startResult, 1)
	h.mgr.start(&runSpec{job: j, srv: srv, path: path, query: q, header: hdr, host: r.Host, remote: r.RemoteAddr,
		retention: retention, started: started})

	timer := time.NewTimer(time.Duration(h.StartWait))
	defer timer.Stop()
	select {
	case res := <-started:
		if res.err != nil {
			// refused before it began: the POST's answer, and no job
			if _, err := h.mgr.store.Delete(r.Context(), company, j.ID); err == nil {
				h.mgr.removeFiles(j)
			}
			for k, v := range res.err.Header {
				w.Header()[k] = v
			}
			return caddyhttp.Error(res.err.Status, res.err)
		}
	case <-timer.C:
	case <-r.Context().Done():
	}
	cur, err := h.mgr.store.Get(r.Context(), company, j.ID)
	if err != nil {
		cur = j
	}
	return h.reply(w, r, http.StatusAccepted, h.view(r, cur, time.Duration(h.LinkTTL)), company, user)
}

func (h *Handler) reply(w http.ResponseWriter, r *http.Request, status int, data any, company, user string) error {
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestID))
	}
	w.Header().Set(contract.HeaderRequestID, id)
	w.Header().Set("Cache-Control", "no-store") // the answer may hold a download link
	env.WriteSuccess(w, status, data, &env.Meta{Timestamp: time.Now(), RequestID: id, CompanyID: company, UserID: user}, nil)
	return nil
}

// jobView is a job as the API shows it.
type jobView struct {
	ID         string            `json:"id"`
	Status     exportjob.Status  `json:"status"`
	Backend    string            `json:"backend"`
	Version    string            `json:"version,omitempty"`
	Format     string            `json:"format"`
	Filter     string            `json:"filter,omitempty"`
	Sort       string            `json:"sort,omitempty"`
	Rows       int64             `json:"rows"`
	Bytes      int64             `json:"bytes"`
	Error      *contract.Error   `json:"error,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	ExpiresAt  *time.Time        `json:"expires_at,omitempty"`
	Links      map[string]string `json:"links"`
	// LinkExpiresAt is when links.download stops working.
	LinkExpiresAt *time.Time `json:"download_expires_at,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (h *Handler) view(r *http.Request, j *exportjob.Job, linkTTL time.Duration) jobView {
	v := jobView{ID: j.ID, Status: j.Status, Backend: j.Backend, Version: j.Version, Format: j.Format, Filter: j.Filter, Sort: j.Sort,
		Rows: j.Rows, Bytes: j.Bytes, CreatedAt: j.Created.UTC(), StartedAt: timePtr(j.Started), FinishedAt: timePtr(j.Finished),
		ExpiresAt: timePtr(j.Expires), Links: map[string]string{"self": Prefix + "/" + j.ID}}
	if j.Status == exportjob.Failed {
		v.Error = &contract.Error{Code: j.ErrCode, Message: j.ErrMsg}
	}
	if j.Status == exportjob.Done {
		key, err := h.mgr.linkKey(r.Context(), h.secret)
		if err != nil {
			h.logger.Error("erp_export_jobs: no link key", zap.Error(err))
			return v
		}
		exp := time.Now().Add(linkTTL).Truncate(time.Second)
		if !j.Expires.IsZero() && j.Expires.Before(exp) {
			exp = j.Expires.Truncate(time.Second)
		}
		q := url.Values{"company": {j.Company}, "expires": {strconv.FormatInt(exp.Unix(), 10)},
			"sig": {exportjob.Link{Key: key}.Sign(j.Company, j.ID, exp)}}
		v.Links["download"] = Prefix + "/" + j.ID + "/download?" + q.Encode()
		v.LinkExpiresAt = timePtr(exp)
	}
	return v
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request, id string) error {
	company, user := caller(r)
	if company == "" {
		return apiError(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required", "")
	}
	ttl := time.Duration(h.LinkTTL)
	if s := r.URL.Query().Get("link_ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > ttl {
			return apiError(http.StatusBadRequest, contract.CodeBadRequest, "link_ttl must be a duration (30s, 5m) up to "+ttl.String(), "link_ttl")
		}
		ttl = d
	}
	j, err := h.get(r, company, id)
	if err != nil {
		return err
	}
	return h.reply(w, r, http.StatusOK, h.view(r, j, ttl), company, user)
}

func (h *Handler) get(r *http.Request, company, id string) (*exportjob.Job, error) {
	j, err := h.mgr.store.Get(r.Context(), company, id)
	if errors.Is(err, exportjob.ErrNotFound) {
		return nil, apiError(http.StatusNotFound, contract.CodeNotFound, "no such export job", "")
	}
	if err != nil {
		h.logger.Error("erp_export_jobs: the job store failed", zap.Error(err))
		return nil, caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("export jobs are temporarily unavailable"))
	}
	return j, nil
}

func (h *Handler) remove(w http.ResponseWriter, r *http.Request, id string) error {
	company, user := caller(r)
	if company == "" {
		return apiError(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required", "")
	}
	j, err := h.mgr.store.Delete(r.Context(), company, id)
	if errors.Is(err, exportjob.ErrNotFound) {
		return apiError(http.StatusNotFound, contract.CodeNotFound, "no such export job", "")
	}
	if err != nil {
		h.logger.Error("erp_export_jobs: the job store failed", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("export jobs are temporarily unavailable"))
	}
	// running here: stopped now; at another instance: stopped at its next
	// progress update, which finds the record gone
	h.mgr.cancelLocal(id)
	if !j.Status.Active() {
		h.mgr.removeFiles(j)
	}
	return h.reply(w, r, http.StatusOK, map[string]any{"id": id, "deleted": true}, company, user)
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request, id string) error {
	q := r.URL.Query()
	company := q.Get("company")
	key, err := h.mgr.linkKey(r.Context(), h.secret)
	if err != nil {
		h.logger.Error("erp_export_jobs: no link key", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("export downloads are temporarily unavailable"))
	}
	if !exportjob.ValidID(id) {
		return apiError(http.StatusForbidden, contract.CodeForbidden, "the download link is not valid", "")
	}
	switch err := (exportjob.Link{Key: key}).Check(company, id, q.Get("expires"), q.Get("sig"), time.Now()); {
	case errors.Is(err, exportjob.ErrExpiredLink):
		return apiError(http.StatusGone, contract.CodeTokenExpired, "the download link expired: GET "+Prefix+"/"+id+" for a new one", "")
	case err != nil:
		return apiError(http.StatusForbidden, contract.CodeForbidden, "the download link is not valid", "")
	}
	j, err := h.mgr.store.Get(r.Context(), company, id)
	if errors.Is(err, exportjob.ErrNotFound) {
		return apiError(http.StatusGone, contract.CodeNotFound, "the export is no longer available", "")
	}
	if err != nil {
		h.logger.Error("erp_export_jobs: the job store failed", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("export downloads are temporarily unavailable"))
	}
	if j.Status != exportjob.Done {
		return apiError(http.StatusConflict, contract.CodeConflict, "the export is "+string(j.Status)+", not done", "")
	}
	f, err := os.Open(filepath.Join(h.mgr.dir, j.FileName()))
	if err != nil {
		h.logger.Warn("erp_export_jobs: a done job's file is missing (in a fleet, dir must be a shared volume)",
			zap.String("job", id), zap.String("ran_at", j.Instance))
		return apiError(http.StatusGone, contract.CodeNotFound, "the export's file is no longer available", "")
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return apiError(http.StatusGone, contract.CodeNotFound, "the export's file is no longer available", "")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", export.Formats[j.Format])
	hdr.Set("Content-Disposition", `attachment; filename="`+j.Backend+"."+j.Format+`"`)
	hdr.Set("Cache-Control", "private, no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
	http.ServeContent(w, r, "", info.ModTime(), f)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
