package envelope

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
)

// cutBody follows the request body the chain reads: whether it was read
// or closed before its end. Such a body's connection must end with the
// answer (Connection: close): net/http may otherwise keep it alive with
// the connection's reader in the middle of the body — a chunked body the
// proxy stopped sending when the backend answered early (a backend's own
// body limit), say — and read the rest of the body as the next request:
// a request smuggled inside a body, answered on a connection a front proxy
// may share with other clients. A body never touched is net/http's to
// skip, as it knows its framing.
type cutBody struct {
	io.ReadCloser
	// set by the goroutine that sends the body upstream, read by the one
	// that answers
	touched, ended atomic.Bool
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.touched.Store(true)
	if errors.Is(err, io.EOF) {
		b.ended.Store(true)
	}
	return n, err
}

func (b *cutBody) Close() error {
	b.touched.Store(true)
	return b.ReadCloser.Close()
}

// cut reports whether the body was left in the middle.
func (b *cutBody) cut() bool { return b != nil && b.touched.Load() && !b.ended.Load() }

// follow wraps r's body in a cutBody when there is one, and keeps it in
// the request's vars for the error route. (Its own allocation, not the
// pooled recorder's: the error route renders after the recorder is gone.)
func follow(r *http.Request) *cutBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	b := &cutBody{ReadCloser: r.Body}
	r.Body = b
	caddyhttp.SetVar(r.Context(), contract.VarRequestBody, b)
	return b
}

// followed is the request's cutBody (nil: none).
func followed(r *http.Request) *cutBody {
	b, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestBody).(*cutBody)
	return b
}

// endIfCut sets Connection: close on h when the body was left in the
// middle.
func endIfCut(h http.Header, b *cutBody) {
	if b.cut() {
		h.Set("Connection", "close")
	}
}
