package dpfinish

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// upload is the demo's answer to an attachment.
type upload struct {
	InvoiceID string `json:"invoice_id"`
	Size      int64  `json:"size"`
	Files     []struct {
		Field, Filename string
		Size            int64  `json:"size"`
		SHA256          string `json:"sha256"`
	} `json:"files"`
}

// randomBytes is a reproducible stream of n pseudo-random bytes.
func randomBytes(n int64, seed uint64) io.Reader {
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	return io.LimitReader(rng, n)
}

// multipartBody streams a multipart/form-data body with one file part of
// size bytes; sum receives the part's SHA-256 when the body is read.
func multipartBody(size int64, seed uint64) (body io.ReadCloser, contentType string, sum func() string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	h := sha256.New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		part, err := mw.CreateFormFile("file", "scan.pdf")
		if err == nil {
			_, err = io.Copy(io.MultiWriter(part, h), randomBytes(size, seed))
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType(), func() string { <-done; return hex.EncodeToString(h.Sum(nil)) }
}

// overLimit sends body until n bytes are out, then holds the rest back
// until the answer has come (or 10 s have passed). A client that keeps
// writing after the edge refused its upload races the edge's close, and
// may read a connection reset instead of the 413 (HTTP/1.1's way, not the
// edge's; seen once in a full run). n must be well past the limit: after
// the refusal, Go's server reads up to 256 KiB more of the body before it
// answers (Caddy's idle-timeout reader hides the body's length from it).
func overLimit(t *testing.T, url, token, contentType string, body io.Reader, length, n int64) *httpt.Response {
	t.Helper()
	answered := make(chan struct{})
	defer close(answered)
	if c, ok := body.(io.Closer); ok {
		defer c.Close() // a multipart writer blocked on the rest stops
	}
	held := io.MultiReader(io.LimitReader(body, n), readerFunc(func([]byte) (int, error) {
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
		}
		return 0, io.ErrUnexpectedEOF // the rest is never sent: the edge answered first
	}))
	return post(t, url, token, contentType, held, length)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// post sends body (length -1: chunked) with the bearer token.
func post(t *testing.T, url, token, contentType string, body io.Reader, length int64) *httpt.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if length < 0 {
		req.Body = io.NopCloser(body) // no length: sent chunked
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &httpt.Response{Response: resp, Body: b}
}

func invoiceID(t *testing.T, base, token string) string {
	t.Helper()
	r := httpt.Get(t, base+"/api/v2/invoices?limit=1", demoauth.Bearer(token))
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Envelope(t).Data, &items); err != nil || len(items) == 0 {
		t.Fatalf("invoices: %v %s", err, r.Body)
	}
	return items[0].ID
}

func attachments(t *testing.T, url, token string) int {
	t.Helper()
	r := httpt.Get(t, url, demoauth.Bearer(token))
	var files []json.RawMessage
	if err := json.Unmarshal(r.Envelope(t).Data, &files); err != nil {
		t.Fatalf("attachments: %v %s", err, r.Body)
	}
	return len(files)
}

func wantTooLarge(t *testing.T, what string, r *httpt.Response, limit float64) {
	t.Helper()
	e := r.Envelope(t)
	if r.StatusCode != http.StatusRequestEntityTooLarge || e.Code() != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("%s: %d %s, want 413 PAYLOAD_TOO_LARGE", what, r.StatusCode, r.Body)
	}
	if got, _ := e.Errors[0].Context["limit"].(float64); got != limit || e.Errors[0].Context["plan"] != "free" {
		t.Fatalf("%s: context %v, want limit %v plan free", what, e.Errors[0].Context, limit)
	}
}

// TestUploads: multipart uploads stream whole to the backend within the
// plan's limit (acme: standard), and are refused over it (globex: free),
// up front by Content-Length or mid-stream when chunked, without the
// backend ever taking the body.
func TestUploads(t *testing.T) {
	const freeLimit = 1 << 20
	a := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_MAX_BODY": "100MB", "ERP_BODY_LIMIT_FREE": "1MiB", "ERP_BODY_LIMIT_STANDARD": "64MiB",
	}})
	acme := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	globex := demoauth.Login(t, a.URL, "bob@globex.test", "globex").Access

	// within the plan: streamed (chunked), the backend hashes what it got
	inv := invoiceID(t, a.URL, acme)
	url := a.URL + "/api/v2/invoices/" + inv + "/attachments"
	const size = 20 << 20
	body, ct, sum := multipartBody(size, 1)
	r := post(t, url, acme, ct, body, -1)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.StatusCode, r.Body)
	}
	var got upload
	if err := json.Unmarshal(r.Envelope(t).Data, &got); err != nil || len(got.Files) != 1 {
		t.Fatalf("upload answer: %v %s", err, r.Body)
	}
	if f := got.Files[0]; f.Size != size || f.SHA256 != sum() || f.Filename != "scan.pdf" {
		t.Fatalf("the backend got %d bytes %s, want %d %s", f.Size, f.SHA256, size, sum())
	}
	if n := attachments(t, url, acme); n != 1 {
		t.Fatalf("acme's invoice has %d attachments, want 1", n)
	}

	// over the free plan's limit
	ginv := invoiceID(t, a.URL, globex)
	gurl := a.URL + "/api/v2/invoices/" + ginv + "/attachments"
	big := strings.Repeat("x", freeLimit+1)
	wantTooLarge(t, "Content-Length over the limit", post(t, gurl, globex, "application/pdf", strings.NewReader(big), int64(len(big))), freeLimit)
	body, ct, _ = multipartBody(5<<20, 2)
	wantTooLarge(t, "chunked over the limit", overLimit(t, gurl, globex, ct, body, -1, 2*freeLimit), freeLimit)
	if n := attachments(t, gurl, globex); n != 0 {
		t.Fatalf("the backend took %d over-limit uploads", n)
	}
	// within it, both ways
	small := strings.Repeat("y", freeLimit)
	if r := post(t, gurl, globex, "application/pdf", strings.NewReader(small), int64(len(small))); r.StatusCode != http.StatusCreated {
		t.Fatalf("at the limit: %d %s", r.StatusCode, r.Body)
	}
	if r := post(t, gurl, globex, "application/pdf", strings.NewReader(small), -1); r.StatusCode != http.StatusCreated {
		t.Fatalf("at the limit, chunked: %d %s", r.StatusCode, r.Body)
	}
	if n := attachments(t, gurl, globex); n != 2 {
		t.Fatalf("globex's invoice has %d attachments, want 2", n)
	}
}

// rssKiB is a process's resident set (VmRSS), in KiB.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestUploadMemory: an upload larger than any buffer streams through the
// gateway (edge and demo backend, one process) without its resident set
// growing with it. DPFINISH_UPLOAD_MB sets the size (default 128).
func TestUploadMemory(t *testing.T) {
	mb := int64(128)
	if v := os.Getenv("DPFINISH_UPLOAD_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("DPFINISH_UPLOAD_MB=%q", v)
		}
		mb = n
	}
	a := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_MAX_BODY": "100GB", "ERP_BODY_LIMIT_STANDARD": "100GiB",
	}})
	acme := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	url := a.URL + "/api/v2/invoices/" + invoiceID(t, a.URL, acme) + "/attachments"
	warm, ct, _ := multipartBody(1<<20, 3) // the paths' buffers and pools exist before the baseline
	if r := post(t, url, acme, ct, warm, -1); r.StatusCode != http.StatusCreated {
		t.Fatalf("warm-up: %d %s", r.StatusCode, r.Body)
	}
	before := rssKiB(t, a.Pid())
	size := mb << 20
	body, ct, sum := multipartBody(size, 4)
	r := post(t, url, acme, ct, body, -1)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.StatusCode, r.Body)
	}
	var got upload
	if err := json.Unmarshal(r.Envelope(t).Data, &got); err != nil || len(got.Files) != 1 || got.Files[0].Size != size || got.Files[0].SHA256 != sum() {
		t.Fatalf("upload answer: %v %s", err, r.Body)
	}
	after := rssKiB(t, a.Pid())
	growth := after - before
	t.Logf("uploaded %d MiB: gateway RSS %d KiB → %d KiB (growth %d KiB)", mb, before, after, growth)
	if growth > 64<<10 {
		t.Fatalf("RSS grew by %d KiB for a %d MiB upload: the body is not streamed", growth, mb)
	}
}
