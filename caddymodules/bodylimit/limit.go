package bodylimit

// This file has no Caddy import: the counting reader that enforces a limit
// on a body of unknown length, tested and benchmarked alone.

import (
	"errors"
	"io"
)

// errTooLarge is what a limited body reads once it crossed its limit.
var errTooLarge = errors.New("request body larger than the limit")

// limitedBody passes a body through until more than limit bytes came: then
// every read fails, so a proxy streaming it stops before the last byte and
// the backend never sees a complete body. Unlike http.MaxBytesReader it
// does not touch the connection (the edge still answers 413 in the
// envelope) and reports whether it tripped.
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
	if int64(n) > l.left {
		l.tripped = true
		return int(l.left), errTooLarge
	}
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.body.Close() }
