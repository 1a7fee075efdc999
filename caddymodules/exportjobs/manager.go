package exportjobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/export"
	"github.com/erpgate/erpgate/internal/exportjob"
)

// lease is how long an active job holds its company's slot without news
// from its instance; progress renews it every leaseRenew.
const (
	lease      = 30 * time.Second
	leaseRenew = time.Second
)

// manager is the lasting state of erp_export_jobs (erpapp.Keep): the store,
// the link key, the jobs this process runs and the janitor of the export
// directory. A config reload keeps it, and the jobs running in it.
type manager struct {
	store    exportjob.Store
	redis    *exportjob.Redis // nil: memory
	dir      string
	instance string
	logger   *zap.Logger

	ctx    context.Context // ends when the last config holding it goes
	cancel context.CancelFunc

	keyMu sync.Mutex
	key   []byte // the link key; made on first use

	mu      sync.Mutex
	running map[string]context.CancelFunc
	wg      sync.WaitGroup
}

// Destruct implements caddy.Destructor: the running jobs are cancelled.
func (m *manager) Destruct() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

// linkKey is the configured key, else the one shared through Redis, else
// one made up for this process.
func (m *manager) linkKey(ctx context.Context, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if m.key != nil {
		return m.key, nil
	}
	if m.redis != nil {
		k, err := m.redis.LinkKey(ctx)
		if err != nil {
			return nil, err
		}
		m.key = k
		return k, nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	m.key = k
	return k, nil
}

// janitor removes the export files older than retention (mtime: when the
// job last wrote them), every interval until the manager ends.
func (m *manager) janitor(retention time.Duration) {
	defer m.wg.Done()
	interval := min(max(retention/4, time.Second), time.Minute)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.sweep(time.Now().Add(-retention))
		}
	}
}

func (m *manager) sweep(before time.Time) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		id, _, _ := strings.Cut(name, ".")
		if e.IsDir() || !exportjob.ValidID(id) {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().Before(before) {
			if err := os.Remove(filepath.Join(m.dir, name)); err == nil {
				m.logger.Debug("expired export file removed", zap.String("file", name))
			}
		}
	}
}

// removeFiles removes job id's output, finished or partial.
func (m *manager) removeFiles(j *exportjob.Job) {
	_ = os.Remove(filepath.Join(m.dir, j.FileName()))
	_ = os.Remove(filepath.Join(m.dir, j.FileName()+".part"))
}

// cancelLocal cancels job id when this process runs it.
func (m *manager) cancelLocal(id string) {
	m.mu.Lock()
	cancel := m.running[id]
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// startResult is what the POST waits for: the export's first answer.
type startResult struct {
	status int
	err    *contract.Error // the export's refusal, when status is not 200
}

// runSpec is one job's run: where it re-enters and with what.
type runSpec struct {
	job       *exportjob.Job
	srv       *caddyhttp.Server
	path      string // /api/[{v}/]{backend}/export
	query     url.Values
	header    http.Header // the credential and what names the client
	host      string
	remote    string
	retention time.Duration
	started   chan<- startResult
}

// start runs the job in the background: it re-enters the server with
// GET …/export and the caller's credential, writes the answer to the
// job's file and keeps the record up to date.
func (m *manager) start(s *runSpec) {
	ctx, cancel := context.WithCancel(m.ctx)
	m.mu.Lock()
	m.running[s.job.ID] = cancel
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			cancel()
			m.mu.Lock()
			delete(m.running, s.job.ID)
			m.mu.Unlock()
		}()
		m.run(ctx, cancel, s)
	}()
}

func (m *manager) run(ctx context.Context, cancel context.CancelFunc, s *runSpec) {
	j := s.job
	part := filepath.Join(m.dir, j.FileName()+".part")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		m.logger.Error("export job: cannot create its file", zap.String("job", j.ID), zap.Error(err))
		e := contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "the export's file cannot be written")
		s.started <- startResult{status: e.Status, err: e}
		m.finish(j, e, s.retention)
		return
	}
	begun := make(chan struct{})
	fw := &fileWriter{f: f, hdr: http.Header{}, started: s.started}
	// the export's 200: the record says running before the POST answers
	fw.onStart = func() {
		j.Status, j.Started = exportjob.Running, time.Now()
		if err := m.store.Update(ctx, j, lease, lease+s.retention); err != nil && !errors.Is(err, exportjob.ErrNotFound) {
			m.logger.Warn("export job: its start cannot be recorded", zap.String("job", j.ID), zap.Error(err))
		}
		close(begun)
	}
	progress := &export.Progress{}
	req, err := http.NewRequestWithContext(export.WithProgress(ctx, progress), http.MethodGet, s.path+"?"+s.query.Encode(), nil)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(part)
		e := contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "the export's request cannot be made")
		fw.start(e.Status, e)
		m.finish(j, e, s.retention)
		return
	}
	req.Host, req.RemoteAddr = s.host, s.remote
	req.RequestURI = req.URL.RequestURI()
	req.Header = s.header

	// progress: rows and bytes in the record, the lease renewed; a record
	// deleted meanwhile (DELETE at any instance) cancels the run
	tick := make(chan struct{})
	go func() {
		defer close(tick)
		select {
		case <-begun:
		case <-ctx.Done():
			return
		}
		t := time.NewTicker(leaseRenew)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cur := *j
				cur.Status, cur.Rows, cur.Bytes = exportjob.Running, progress.Rows.Load(), fw.written()
				if err := m.store.Update(ctx, &cur, lease, lease+s.retention); errors.Is(err, exportjob.ErrNotFound) {
					cancel()
					return
				}
			}
		}
	}()

	aborted := serve(s.srv, fw, req)
	cerr := f.Close()
	cancel()
	<-tick

	j.Rows, j.Bytes = progress.Rows.Load(), fw.written()
	switch {
	case fw.status() != http.StatusOK:
		_ = os.Remove(part)
		e := fw.refusal()
		fw.start(e.Status, e)
		m.finish(j, e, s.retention)
	case aborted || progress.Aborted.Load():
		_ = os.Remove(part)
		m.finish(j, contract.NewError(http.StatusBadGateway, contract.CodeUpstreamUnavailable, "the export was cut off: a page failed, the quota ran out or the job was stopped"), s.retention)
	case cerr != nil:
		_ = os.Remove(part)
		m.finish(j, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "the export's file cannot be written"), s.retention)
	default:
		if err := os.Rename(part, filepath.Join(m.dir, j.FileName())); err != nil {
			_ = os.Remove(part)
			m.finish(j, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "the export's file cannot be written"), s.retention)
			return
		}
		m.finish(j, nil, s.retention)
	}
}

// serve re-enters the server; true when the export aborted its stream
// (it panics with http.ErrAbortHandler once started).
func serve(srv *caddyhttp.Server, w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel panics as it is
				panic(v)
			}
			aborted = true
		}
	}()
	srv.ServeHTTP(w, r)
	return false
}

// finish records the job's end: done (e nil) or failed with e. A job
// deleted meanwhile leaves its files to be removed here.
func (m *manager) finish(j *exportjob.Job, e *contract.Error, retention time.Duration) {
	now := time.Now()
	j.Finished, j.Expires = now, now.Add(retention)
	j.Status = exportjob.Done
	if e != nil {
		j.Status, j.ErrCode, j.ErrMsg = exportjob.Failed, e.Code, e.Message
	}
	// not the job's context: a cancelled job still records its end
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 5*time.Second)
	defer cancel()
	if err := m.store.Update(ctx, j, lease, retention); err != nil {
		if !errors.Is(err, exportjob.ErrNotFound) {
			m.logger.Error("export job: its end cannot be recorded", zap.String("job", j.ID), zap.Error(err))
		}
		m.removeFiles(j)
	}
}

// fileWriter takes the re-entered export's answer: a 200's body goes to
// the file, any other answer (an envelope error) is kept in memory, up to
// 64 KiB. The first WriteHeader tells the waiting POST.
type fileWriter struct {
	f       *os.File
	hdr     http.Header
	started chan<- startResult // buffered, 1
	onStart func()             // called once, on a 200, before started is told

	mu   sync.Mutex
	code int
	n    int64
	body bytes.Buffer
	once sync.Once
}

func (w *fileWriter) Header() http.Header { return w.hdr }

func (w *fileWriter) WriteHeader(code int) {
	if code < 200 {
		return
	}
	w.mu.Lock()
	if w.code == 0 {
		w.code = code
	}
	w.mu.Unlock()
	if code == http.StatusOK {
		w.begin()
	}
}

func (w *fileWriter) begin() {
	w.once.Do(func() {
		if w.onStart != nil {
			w.onStart()
		}
		w.started <- startResult{status: http.StatusOK}
	})
}

func (w *fileWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	if w.code == 0 {
		w.code = http.StatusOK
		w.mu.Unlock()
		w.begin()
		w.mu.Lock()
	}
	code := w.code
	w.mu.Unlock()
	if code != http.StatusOK {
		if room := 64<<10 - w.body.Len(); room > 0 {
			w.body.Write(b[:min(len(b), room)])
		}
		return len(b), nil
	}
	n, err := w.f.Write(b)
	w.mu.Lock()
	w.n += int64(n)
	w.mu.Unlock()
	return n, err
}

// Flush is a no-op: the file is written through.
func (w *fileWriter) Flush() {}

func (w *fileWriter) status() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.code
}

func (w *fileWriter) written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *fileWriter) start(status int, e *contract.Error) {
	w.once.Do(func() { w.started <- startResult{status: status, err: e} })
}

// refusal is the export's error answer as a contract error: the
// envelope's first error, with the answer's status.
func (w *fileWriter) refusal() *contract.Error {
	status := w.status()
	if status == 0 {
		status = http.StatusBadGateway
	}
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"errors"`
	}
	e := &contract.Error{Status: status, Code: contract.CodeForStatus(status), Message: http.StatusText(status)}
	if json.Unmarshal(w.body.Bytes(), &env) == nil && len(env.Errors) > 0 {
		e.Code, e.Message, e.Field = env.Errors[0].Code, env.Errors[0].Message, env.Errors[0].Field
	}
	if h := w.hdr.Get("Retry-After"); h != "" {
		e.Header = http.Header{"Retry-After": {h}}
	}
	return e
}
