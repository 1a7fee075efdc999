package batch

import (
	"context"
	"testing"
)

// TestRecorderBoundsTheAnswer: an answer over the limit is cut, marked and
// its request cancelled; informational statuses are not the answer's.
func TestRecorderBoundsTheAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{header: make(map[string][]string), limit: 10, cancel: cancel}
	rec.WriteHeader(103)
	rec.WriteHeader(201)
	if n, err := rec.Write([]byte("0123456789")); n != 10 || err != nil {
		t.Fatalf("within the limit: %d %v", n, err)
	}
	if ctx.Err() != nil || rec.overflow {
		t.Fatal("cancelled within the limit")
	}
	if _, err := rec.Write([]byte("x")); err == nil || !rec.overflow || ctx.Err() == nil {
		t.Fatalf("over the limit: err %v, overflow %v, ctx %v", err, rec.overflow, ctx.Err())
	}
	if rec.status != 201 || rec.buf.Len() != 10 {
		t.Fatalf("status %d, %d bytes kept", rec.status, rec.buf.Len())
	}
}

// TestItemHeaders: which item headers are refused.
func TestItemHeaders(t *testing.T) {
	for _, h := range []string{"Authorization", "X-Api-Key", "Cookie", "X-Csrf-Token", "Origin", "Host", "Content-Length",
		"Transfer-Encoding", "X-Forwarded-For", "Forwarded", "X-Erp-Company-Id", "Proxy-Authorization", "X-Real-Ip"} {
		if !headerRefused(h) {
			t.Errorf("%s accepted", h)
		}
	}
	for _, h := range []string{"Idempotency-Key", "If-Match", "Prefer", "Accept", "Content-Type", "User-Agent", "Accept-Language"} {
		if headerRefused(h) {
			t.Errorf("%s refused", h)
		}
	}
	if validHeaderName("a b") || validHeaderName("") || !validHeaderName("X-Custom_1") || validHeaderValue("a\nb") || !validHeaderValue("a\tb") {
		t.Error("header name/value checks")
	}
}
