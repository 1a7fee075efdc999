package demo

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Diagnostic limits and defaults.
const (
	maxSlowMillis     = 60000
	defaultSlowMillis = 1000
	maxBigMB          = 1024
	defaultBigMB      = 1
	maxEventInterval  = 10000
	defaultEventMs    = 100
	eventCount        = 3
	bigRecordPad      = 960 // filler per streamed object, so one object is about 1 KiB
	bigFlushEvery     = 64  // objects between context checks
	wsAcceptGUID      = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	textBody          = "erp_demo: plain text, not JSON\n"
)

var (
	pingBody   = []byte(`{"ok":true}`)
	brokenBody = []byte(`{"a": [1, 2,`)
	bigPad     = strings.Repeat("x", bigRecordPad)
)

func (s *Server) serveDiagnostic(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	if strings.HasPrefix(name, "echo-headers/") {
		// any path below echo-headers echoes too, so a test config can
		// mount the echo as a version of a real backend (…/_demo/echo-headers
		// as the upstream) and read what the edge sends that backend
		name = "echo-headers"
	}
	switch name {
	case "ping":
		writeRaw(w, "application/json", pingBody)
	case "slow":
		serveSlow(w, r)
	case "big":
		serveBig(w, r)
	case "broken":
		writeRaw(w, "application/json", brokenBody)
	case "text":
		writeRaw(w, "text/plain; charset=utf-8", []byte(textBody))
	case "events":
		serveEvents(w, r)
	case "ws":
		s.serveWebSocket(w, r)
	case "echo-headers":
		writeJSON(w, http.StatusOK, map[string]any{
			"method":  r.Method,
			"host":    r.Host,
			"path":    r.URL.Path,
			"query":   r.URL.RawQuery,
			"headers": r.Header,
		})
	case "status":
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 400 || code > 599 {
			writeProblem(w, queryProblem([]FieldError{{Field: "code", Code: codeInvalidValue, Message: "code must be an integer between 400 and 599"}}))
			return
		}
		writeProblem(w, newProblem(code, "demo-status", "erp_demo answered %d as asked", code))
	default:
		notFoundPath(w, r)
	}
}

func writeRaw(w http.ResponseWriter, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// intParam reads an optional integer query parameter in [0, ∞), capped at max.
func intParam(w http.ResponseWriter, r *http.Request, name string, def, max int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		writeProblem(w, queryProblem([]FieldError{{Field: name, Code: codeInvalidValue, Message: name + " must be a non-negative integer"}}))
		return 0, false
	}
	return min(n, max), true
}

func serveSlow(w http.ResponseWriter, r *http.Request) {
	ms, ok := intParam(w, r, "ms", defaultSlowMillis, maxSlowMillis)
	if !ok {
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]int{"slept_ms": ms})
	case <-r.Context().Done(): // the client or the edge gave up: nobody to answer
	}
}

// serveBig streams a JSON array of about mb MiB of ~1 KiB objects through a
// small buffer, so memory stays flat whatever the size.
func serveBig(w http.ResponseWriter, r *http.Request) {
	mb, ok := intParam(w, r, "mb", defaultBigMB, maxBigMB)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	target := int64(mb) << 20
	bw := bufio.NewWriterSize(w, 32<<10)
	var written int64
	write := func(s string) bool {
		n, err := bw.WriteString(s)
		written += int64(n)
		return err == nil
	}
	if !write("[") {
		return
	}
	ctx := r.Context()
	for i := 0; written < target-1; i++ {
		if i%bigFlushEvery == 0 && ctx.Err() != nil {
			return
		}
		sep := ","
		if i == 0 {
			sep = ""
		}
		if !write(sep + `{"i":` + strconv.Itoa(i) + `,"kind":"demo-record","pad":"` + bigPad + `"}`) {
			return
		}
	}
	if write("]") {
		_ = bw.Flush()
	}
}

// serveEvents sends eventCount server-sent events, flushing each one.
func serveEvents(w http.ResponseWriter, r *http.Request) {
	interval, ok := intParam(w, r, "interval_ms", defaultEventMs, maxEventInterval)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for n := 1; n <= eventCount; n++ {
		if n > 1 {
			t := time.NewTimer(time.Duration(interval) * time.Millisecond)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: tick\ndata: {\"n\":%d}\n\n", n, n); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// serveWebSocket completes the RFC 6455 opening handshake, then echoes raw
// bytes without framing: it only proves the edge passes upgrades through.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		writeProblem(w, newProblem(http.StatusUpgradeRequired, "upgrade-required", "this endpoint needs a WebSocket upgrade"))
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeProblem(w, newProblem(http.StatusUpgradeRequired, "upgrade-required", "Sec-WebSocket-Version must be 13"))
		return
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		writeProblem(w, newProblem(http.StatusBadRequest, "bad-request", "Sec-WebSocket-Key must be 16 bytes in base64"))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeProblem(w, newProblem(http.StatusInternalServerError, "internal", "this connection cannot be upgraded"))
		return
	}
	defer conn.Close()
	if !s.track(conn) {
		return
	}
	defer s.untrack(conn)
	_ = conn.SetDeadline(time.Time{}) // the server's read/write timeouts no longer apply
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		WebSocketAccept(key) + "\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	// brw.Reader may already hold bytes the client sent after its request.
	_, _ = io.Copy(conn, brw.Reader)
}

// WebSocketAccept is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func WebSocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + wsAcceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// headerHasToken reports whether a comma-separated header lists token,
// case-insensitively (Connection: keep-alive, Upgrade).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
