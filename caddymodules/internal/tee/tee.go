// Package tee is the edge's one bounded copy of an answer on its way to the
// client: erp_cache stores it, erp_idempotency replays it, erp_merge keeps it
// as a merge base. The answer always goes through untouched; the copy stops
// (and is dropped) past a size bound, and is taken only when the handler
// wants this answer, decided once the final status and headers are known.
// It owns no state beyond one answer.
package tee

import "net/http"

// Writer passes an answer through and keeps a copy of it.
type Writer struct {
	http.ResponseWriter
	// Max is the most body bytes copied; a longer body is not kept (Overflow).
	Max int64
	// Keep says, at the final status (≥ 200) with the answer's headers set,
	// whether to copy this answer. nil: every answer.
	Keep func(status int, h http.Header) bool

	status int
	header http.Header
	buf    []byte
	keep   bool
	over   bool
}

// WriteHeader records the first final status and, when the answer is
// kept, a copy of its headers.
func (t *Writer) WriteHeader(code int) {
	if t.status == 0 && code >= 200 {
		t.status = code
		h := t.ResponseWriter.Header()
		if t.keep = t.Keep == nil || t.Keep(code, h); t.keep {
			t.header = h.Clone()
		}
	}
	t.ResponseWriter.WriteHeader(code)
}

// Write passes p through and copies it while the copy is within Max.
func (t *Writer) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.WriteHeader(http.StatusOK)
	}
	if t.keep && !t.over {
		if int64(len(t.buf)+len(p)) > t.Max {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p...)
		}
	}
	return t.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath (Flush).
func (t *Writer) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// Status is the answer's final status, 0 when none was written.
func (t *Writer) Status() int { return t.status }

// Kept reports whether the answer was copied whole: wanted by Keep and
// within Max.
func (t *Writer) Kept() bool { return t.status != 0 && t.keep && !t.over }

// Overflow reports whether a wanted answer was longer than Max.
func (t *Writer) Overflow() bool { return t.over }

// Sent is the copy of the answer's headers at its final status (nil when
// not kept).
func (t *Writer) Sent() http.Header { return t.header }

// Body is the copied body (nil when not kept).
func (t *Writer) Body() []byte { return t.buf }
