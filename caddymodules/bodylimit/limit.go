package bodylimit

// This file has no Caddy import: the counting reader that enforces a limit
// on a body of unknown length, tested and benchmarked alone. The body it
// counts is an http.MaxBytesReader of the same limit (on the server's own
// writer, which it tells to end the connection gracefully); its error is a
// trip too.

import (
	"errors"
	"io"
	"net/http"
)

// errTooLarge is what a limited body reads once it crossed its limit.
var errTooLarge = errors.New("request body larger than the limit")

// limitedBody passes a body through until more than limit bytes came: then
// every read fails, so a proxy streaming it stops before the last byte and
// the backend never sees a complete body. It reports whether it tripped,
// so that the edge answers its own 413 in the envelope (Caddy would answer
// a MaxBytesError with its own).
type limitedBody struct {
	body    io.ReadCloser
	left    int64 // bytes still allowed
	tripped bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.tripped {
		return 0, errTooLarge
	}
	// read one byte more than allowed: that byte is never handed on
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.body.Read(p)
	if int64(n) > l.left || (err != nil && isMaxBytes(err)) { // the server's own count crossed the same limit
		if int64(n) > l.left {
			n = int(l.left)
		}
		l.tripped = true
		return n, errTooLarge
	}
	l.left -= int64(n)
	return n, err
}

func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func (l *limitedBody) Close() error { return l.body.Close() }
