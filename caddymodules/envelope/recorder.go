package envelope

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/tracing"
)

type mode uint8

const (
	modeUndecided mode = iota // WriteHeader not called yet
	modePass                  // not ours: straight through
	modeBuffer                // JSON, buffering up to max
	modeStream                // JSON larger than max: streaming through env.Stream
)

// recorder sits between the chain and the client. It decides at WriteHeader
// whether an answer is wrapped, and keeps at most max bytes of it.
type recorder struct {
	w       http.ResponseWriter
	r       *http.Request
	max     int64
	mode    mode
	status  int
	buf     []byte
	started bool // headers went to the client
	stream  *env.Stream
	id      string
	// body follows the request body (nil: none)
	body *cutBody
}

var recorderPool = sync.Pool{New: func() any { return &recorder{buf: make([]byte, 0, 8<<10)} }}

// maxPooledBuffer keeps buffers of exceptional answers out of the pool.
const maxPooledBuffer = 256 << 10

func getRecorder(w http.ResponseWriter, r *http.Request, max int64) *recorder {
	rec := recorderPool.Get().(*recorder)
	rec.w, rec.r, rec.max = w, r, max
	return rec
}

func putRecorder(rec *recorder) {
	if cap(rec.buf) > maxPooledBuffer {
		rec.buf = make([]byte, 0, 8<<10)
	}
	st := rec.stream
	*rec = recorder{buf: rec.buf[:0], stream: st}
	recorderPool.Put(rec)
}

func (rec *recorder) Header() http.Header { return rec.w.Header() }

func (rec *recorder) WriteHeader(status int) {
	if rec.mode != modeUndecided {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		rec.w.WriteHeader(status) // informational (103 Early Hints): forward, stay undecided
		return
	}
	rec.status = status
	if rec.shouldWrap(status) {
		rec.mode = modeBuffer
		return
	}
	rec.mode = modePass
	rec.started = true
	endIfCut(rec.w.Header(), rec.body)
	rec.w.WriteHeader(status)
}

func (rec *recorder) shouldWrap(status int) bool {
	switch {
	case rec.r.Method == http.MethodHead,
		status == http.StatusNoContent, status == http.StatusNotModified,
		status == http.StatusPartialContent, status == http.StatusSwitchingProtocols:
		return false
	}
	if enveloped, _ := caddyhttp.GetVar(rec.r.Context(), contract.VarEnveloped).(bool); enveloped {
		return false
	}
	h := rec.w.Header()
	if ce := h.Get("Content-Encoding"); ce != "" && ce != "identity" {
		return false
	}
	return isJSON(h.Get("Content-Type"))
}

// isJSON reports whether a media type is application/json or */*+json.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if len(ct) < 9 {
		return false
	}
	return strings.EqualFold(ct, "application/json") ||
		strings.HasSuffix(strings.ToLower(ct), "+json") ||
		strings.EqualFold(ct, "text/json")
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.mode == modeUndecided {
		rec.WriteHeader(http.StatusOK)
	}
	switch rec.mode {
	case modePass:
		return rec.w.Write(p)
	case modeBuffer:
		if int64(len(rec.buf)+len(p)) <= rec.max {
			rec.buf = append(rec.buf, p...)
			return len(p), nil
		}
		if rec.status >= 300 {
			// an oversized error body: keep what fits, it is only read for codes
			room := int(rec.max) - len(rec.buf)
			if room > 0 {
				rec.buf = append(rec.buf, p[:room]...)
			}
			return len(p), nil
		}
		if err := rec.startStream(); err != nil {
			return 0, err
		}
		return rec.stream.Write(p)
	case modeStream:
		return rec.stream.Write(p)
	}
	return 0, errors.New("erp_envelope: write after finish")
}

// startStream switches an oversized success answer to streaming.
func (rec *recorder) startStream() error {
	rec.mode = modeStream
	h := rec.w.Header()
	stripEntityHeaders(h)
	h.Set("Content-Type", env.ContentType)
	h.Set(contract.HeaderRequestIDKey, rec.requestID())
	rec.started = true
	endIfCut(h, rec.body)
	rec.w.WriteHeader(rec.status)
	m := meta(rec.r, rec.requestID())
	prefix := append(make([]byte, 0, 256), `{"meta":`...)
	prefix = env.AppendMeta(prefix, &m)
	prefix = append(prefix, `,"data":`...)
	if _, err := rec.w.Write(prefix); err != nil {
		return err
	}
	if rec.stream == nil {
		rec.stream = env.NewStream(rec.w)
	} else {
		rec.stream.Reset(rec.w)
	}
	buffered := rec.buf
	rec.buf = rec.buf[:0]
	_, err := rec.stream.Write(buffered)
	return err
}

func (rec *recorder) requestID() string {
	if rec.id == "" {
		rec.id, _ = caddyhttp.GetVar(rec.r.Context(), contract.VarRequestID).(string)
	}
	return rec.id
}

// finish completes the answer after the chain returned without error.
func (rec *recorder) finish(id string) error {
	rec.id = id
	switch rec.mode {
	case modeUndecided:
		// The chain wrote nothing: nothing handled the request.
		return caddyhttp.Error(http.StatusNotFound, errors.New("no handler answered"))
	case modePass:
		rec.emit(rec.status, nil)
		return nil
	case modeStream:
		ok, err := rec.stream.Finish()
		if err != nil {
			return nil // the client went away; nothing more to say
		}
		if ok {
			rec.emit(rec.status, nil) // too large to carry: the event names the resource
		}
		tail := make([]byte, 0, 256)
		if ok {
			tail = append(tail, `,"success":true`...)
			if p := env.PaginationFromHeaders(rec.r, rec.w.Header()); p != nil {
				tail = env.AppendPagination(tail, p)
			}
		} else {
			tail = append(tail, `,"success":false,"errors":`...)
			tail = env.AppendErrors(tail, []env.Error{{
				Code:    contract.CodeUpstreamUnavailable,
				Message: "the backend's answer broke off or was not valid JSON; data is truncated",
			}})
		}
		tail = append(tail, '}')
		_, _ = rec.w.Write(tail)
		return nil
	}
	// modeBuffer
	tr, _ := caddyhttp.GetVar(rec.r.Context(), contract.VarTranslator).(env.Translator)
	if tr == nil {
		tr = env.REST
	}
	_, span := tracing.Start(rec.r.Context(), "erp.dialect.translate")
	res := tr.Translate(&env.Answer{Request: rec.r, Status: rec.status, Header: rec.w.Header(), Body: rec.buf})
	if span.IsRecording() {
		span.SetAttributes(tracing.KeyStatus.Int(rec.status))
		span.End()
	}
	if res.Status == 0 {
		res.Status = rec.status
	}
	m := meta(rec.r, id)
	out := getOut(len(rec.buf) + 320)
	if len(res.Errors) > 0 || res.Status >= 400 {
		if len(res.Errors) == 0 {
			res.Errors = []env.Error{{Code: contract.CodeForStatus(res.Status), Message: contract.MessageForStatus(res.Status)}}
		}
		if res.Status == http.StatusPreconditionFailed {
			// a failed If-Match is a conflict with another writer, whatever
			// the backend calls it
			for i := range res.Errors {
				res.Errors[i].Code = contract.CodeConflict
			}
		}
		out.b = env.AppendFailure(out.b, &m, res.Errors...)
	} else {
		out.b = env.AppendSuccess(out.b, res.Data, &m, res.Pagination)
	}
	h := rec.w.Header()
	stripEntityHeaders(h)
	h.Set("Content-Type", env.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(out.b)))
	h.Set(contract.HeaderRequestIDKey, id)
	rec.started = true
	endIfCut(h, rec.body)
	rec.w.WriteHeader(res.Status)
	_, _ = rec.w.Write(out.b)
	putOut(out)
	if len(res.Errors) == 0 {
		rec.emit(res.Status, res.Data)
	}
	return nil
}

// emit hands a 2xx answer of a write to the request's event sink (set by
// erp_version for writes through a backend whose events are on).
func (rec *recorder) emit(status int, data []byte) {
	if status < 200 || status > 299 {
		return
	}
	if sink, ok := caddyhttp.GetVar(rec.r.Context(), contract.VarEventSink).(contract.EventSink); ok {
		sink.Emit(status, data)
	}
}

// discard drops whatever was buffered, so an error handler can answer.
func (rec *recorder) discard() {
	rec.buf = rec.buf[:0]
	rec.mode = modeUndecided
}

// stripEntityHeaders removes headers that described the backend's body.
// The backend's ETag stays: it names the version of the resource (what
// If-Match and If-None-Match compare against, and what the backend
// evaluates them with), not the bytes of the envelope, as gateways that
// pass ETags through (Kong, Tyk) treat it. The envelope adds only meta
// around the backend's data, so one version always carries one data.
func stripEntityHeaders(h http.Header) {
	// canonical keys: delete from the map directly
	delete(h, "Content-Length")
	delete(h, "Content-Md5")
	delete(h, "Content-Digest")
	delete(h, "Repr-Digest")
}

type outBuf struct{ b []byte }

var outPool = sync.Pool{New: func() any { return &outBuf{b: make([]byte, 0, 8<<10)} }}

func getOut(n int) *outBuf {
	o := outPool.Get().(*outBuf)
	if cap(o.b) < n {
		o.b = make([]byte, 0, n)
	}
	o.b = o.b[:0]
	return o
}

func putOut(o *outBuf) {
	if cap(o.b) <= maxPooledBuffer {
		outPool.Put(o)
	}
}

// FlushError flushes only answers that pass through; a wrapped answer is
// sent whole (or streamed) by the envelope itself.
func (rec *recorder) FlushError() error {
	switch rec.mode {
	case modePass:
		return http.NewResponseController(rec.w).Flush()
	case modeStream:
		return nil
	}
	return nil
}

// Flush implements http.Flusher.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// Hijack is only possible for answers that pass through.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if rec.mode == modeBuffer || rec.mode == modeStream {
		return nil, nil, errors.New("erp_envelope: cannot hijack a wrapped answer")
	}
	rec.started = true
	rec.mode = modePass
	return http.NewResponseController(rec.w).Hijack()
}

// Unwrap lets http.ResponseController reach the client's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
