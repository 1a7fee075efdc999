package exportjobs

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/exportjob"
)

func TestFileWriterRefusal(t *testing.T) {
	started := make(chan startResult, 1)
	w := &fileWriter{hdr: http.Header{}, started: started}
	w.Header().Set("Retry-After", "7")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"success":false,"errors":[{"code":"QUOTA_EXCEEDED","message":"monthly quota spent","field":"x"}]}`))
	if len(started) != 0 {
		t.Fatal("a refusal told the POST before the answer was complete")
	}
	e := w.refusal()
	if e.Status != 429 || e.Code != "QUOTA_EXCEEDED" || e.Message != "monthly quota spent" || e.Field != "x" || e.Header.Get("Retry-After") != "7" {
		t.Fatalf("refusal: %+v", e)
	}
	// an answer that is not an envelope: the status's code
	w = &fileWriter{hdr: http.Header{}, started: started}
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte("nope"))
	if e := w.refusal(); e.Status != 403 || e.Code != "FORBIDDEN" {
		t.Fatalf("plain refusal: %+v", e)
	}
}

func TestFileWriterStarts(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	started := make(chan startResult, 1)
	calls := 0
	w := &fileWriter{f: f, hdr: http.Header{}, started: started, onStart: func() { calls++ }}
	_, _ = w.Write([]byte("a\n")) // an implicit 200
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("b\n"))
	if res := <-started; res.status != 200 || res.err != nil || calls != 1 || w.written() != 4 {
		t.Fatalf("start: %+v, onStart %d times, %d bytes", res, calls, w.written())
	}
}

func TestSweepRemovesOldExportFiles(t *testing.T) {
	dir := t.TempDir()
	m := &manager{dir: dir, logger: zap.NewNop()}
	old, fresh, other := exportjob.NewID()+".csv", exportjob.NewID()+".ndjson.part", "notes.txt"
	for _, n := range []string{old, fresh, other} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, n := range []string{old, other} {
		if err := os.Chtimes(filepath.Join(dir, n), past, past); err != nil {
			t.Fatal(err)
		}
	}
	m.sweep(time.Now().Add(-time.Hour))
	for n, want := range map[string]bool{old: false, fresh: true, other: true} {
		if _, err := os.Stat(filepath.Join(dir, n)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", n, err == nil, want)
		}
	}
}
