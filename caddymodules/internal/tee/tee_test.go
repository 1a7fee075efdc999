package tee

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriter(t *testing.T) {
	t.Parallel()
	// kept: status, headers and body, while the client gets it all
	rr := httptest.NewRecorder()
	w := &Writer{ResponseWriter: rr, Max: 10}
	w.Header().Set("ETag", `"1"`)
	w.WriteHeader(http.StatusCreated)
	w.Header().Set("X-Late", "x") // after the status: not in the copy
	_, _ = w.Write([]byte("hello "))
	_, _ = w.Write([]byte("edge"))
	if !w.Kept() || w.Status() != 201 || string(w.Body()) != "hello edge" || w.Sent().Get("ETag") != `"1"` || w.Sent().Get("X-Late") != "" {
		t.Fatalf("kept %v status %d body %q header %v", w.Kept(), w.Status(), w.Body(), w.Sent())
	}
	if rr.Code != 201 || rr.Body.String() != "hello edge" {
		t.Fatalf("client got %d %q", rr.Code, rr.Body.String())
	}

	// past Max: dropped, the client still gets everything
	rr = httptest.NewRecorder()
	w = &Writer{ResponseWriter: rr, Max: 4}
	_, _ = w.Write([]byte("abc"))
	_, _ = w.Write([]byte("de"))
	if w.Kept() || !w.Overflow() || w.Body() != nil || w.Status() != 200 || rr.Body.String() != "abcde" {
		t.Fatalf("overflow: kept %v over %v body %q client %q", w.Kept(), w.Overflow(), w.Body(), rr.Body.String())
	}

	// not wanted: nothing copied, Keep sees the final status and headers
	rr = httptest.NewRecorder()
	var saw string
	w = &Writer{ResponseWriter: rr, Max: 100, Keep: func(status int, h http.Header) bool {
		saw = h.Get("Content-Type")
		return status < 300
	}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusContinue) // informational: not the final status
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("{}"))
	if w.Kept() || w.Overflow() || w.Body() != nil || w.Sent() != nil || w.Status() != 404 || saw != "application/json" {
		t.Fatalf("unwanted: kept %v body %q status %d saw %q", w.Kept(), w.Body(), w.Status(), saw)
	}
}

func BenchmarkWriter(b *testing.B) {
	body := make([]byte, 1024)
	rr := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rr.Body.Reset()
		w := &Writer{ResponseWriter: rr, Max: 1 << 20, Keep: func(int, http.Header) bool { return false }}
		w.WriteHeader(200)
		_, _ = w.Write(body)
	}
}
