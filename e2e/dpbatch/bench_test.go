package dpbatch

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// BenchmarkDispatch compares one read made directly with the same read as
// a batch of one item, through the running gateway: the difference is
// erp_batch's dispatch overhead (decode, checks, the sub-request through
// the server, recording, the outer envelope). Allocations are the test
// client's only; the gateway's are in its own process.
func BenchmarkDispatch(b *testing.B) {
	in := stacktest.Start(b, stacktest.Options{Config: stacktest.ExampleConfig(b)})
	token := demoauth.Login(b, in.URL, "alice@acme.test", "acme").Access // standard: 6000 a minute
	const path = "/api/v2/customers?limit=1"
	batch := []byte(`{"requests":[{"id":"a","method":"GET","path":"` + path + `"}]}`)
	do := func(b *testing.B, method, url string, body []byte) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (method == http.MethodPost && !bytes.Contains(got, []byte(`"status":200`))) {
			b.Fatalf("%s %s: %d %.300s", method, url, resp.StatusCode, got)
		}
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(b, http.MethodGet, in.URL+path, nil)
		}
	})
	b.Run("batch_of_one", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			do(b, http.MethodPost, in.URL+"/api/v1/batch", batch)
		}
	})
}
