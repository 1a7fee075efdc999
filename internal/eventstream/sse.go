package eventstream

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"
)

// appendSSE appends one Server-Sent Events frame: `id:` the stream
// sequence, `event:` the type, `data:` the CloudEvent (one line per line of
// data; compact JSON has one).
func appendSSE(b []byte, seq uint64, typ string, data []byte) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, typ...)
	b = append(b, '\n')
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b = append(b, "data: "...)
		b = append(b, bytes.TrimSuffix(line, []byte("\r"))...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(b, '\n')
}

// SSEError is the final frame of a stream ended for r: `event: error` with
// an envelope-style error `{"code", "message"}`.
func SSEError(r Reason) []byte {
	data, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{r.Code(), r.Message()})
	return append(append([]byte("event: error\ndata: "), data...), "\n\n"...)
}

// SSE writes a Server-Sent Events stream to an HTTP response.
type SSE struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// sseRetry tells EventSource how soon to reconnect after a drop (ms).
const sseRetry = 2000

// StartSSE sends the stream's headers and a first comment, so that the
// client knows at once that the stream is open.
func StartSSE(w http.ResponseWriter, writeTimeout time.Duration) (*SSE, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering in front of us
	s := &SSE{w: w, rc: http.NewResponseController(w)}
	w.WriteHeader(http.StatusOK)
	return s, s.write(writeTimeout, []byte("retry: "+strconv.Itoa(sseRetry)+"\n: stream open\n\n"))
}

func (s *SSE) write(timeout time.Duration, b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(timeout)) // not every writer has one
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

// Send implements Sink.
func (s *SSE) Send(ctx context.Context, it *Item) error { return s.write(timeoutOf(ctx), it.SSE()) }

// Heartbeat implements Sink: a comment line.
func (s *SSE) Heartbeat(ctx context.Context) error {
	return s.write(timeoutOf(ctx), []byte(": heartbeat\n\n"))
}

// End implements Sink: the final `event: error`.
func (s *SSE) End(ctx context.Context, r Reason) error { return s.write(timeoutOf(ctx), SSEError(r)) }

// Finish clears the write deadline, so the server's own handling of the
// connection after the stream is not cut short.
func (s *SSE) Finish() { _ = s.rc.SetWriteDeadline(time.Time{}) }

// RawSSE writes a Server-Sent Events stream on a hijacked HTTP/1.x
// connection, from a goroutine of its own: the request's handler returns,
// and with it the per-request state of the server and of every handler in
// front (buffers, variables, the handler goroutine's grown stack). An idle
// stream then costs a small goroutine, its queue and its socket. The
// response is delimited by the connection's close (`Connection: close`, no
// chunking). Nothing reads the connection: a client that went away is
// found by the next write (a heartbeat at the latest).
type RawSSE struct {
	c net.Conn
}

// StartRawSSE writes the response head (h's fields, with the stream's
// Content-Type and caching fields) and the first comment on c.
func StartRawSSE(c net.Conn, h http.Header, writeTimeout time.Duration) (*RawSSE, error) {
	h = h.Clone()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "close")
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\n")
	if err := h.Write(&b); err != nil {
		return nil, err
	}
	b.WriteString("\r\nretry: " + strconv.Itoa(sseRetry) + "\n: stream open\n\n")
	s := &RawSSE{c: c}
	return s, s.write(writeTimeout, b.Bytes())
}

func (s *RawSSE) write(timeout time.Duration, b []byte) error {
	_ = s.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := s.c.Write(b)
	return err
}

// Send implements Sink.
func (s *RawSSE) Send(ctx context.Context, it *Item) error { return s.write(timeoutOf(ctx), it.SSE()) }

// Heartbeat implements Sink.
func (s *RawSSE) Heartbeat(ctx context.Context) error {
	return s.write(timeoutOf(ctx), []byte(": heartbeat\n\n"))
}

// End implements Sink.
func (s *RawSSE) End(ctx context.Context, r Reason) error {
	return s.write(timeoutOf(ctx), SSEError(r))
}

// Close closes the connection.
func (s *RawSSE) Close() error { return s.c.Close() }
