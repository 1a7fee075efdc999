package credentials

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestAccessLogHasNoCredential: every query value whose name looks like a
// credential is missing from the access log (Caddyfile.example's, on the
// binary's stderr) — in the request's URI, whatever the route and answer,
// and in a Referer — while a harmless parameter stays.
func TestAccessLogHasNoCredential(t *testing.T) {
	t.Parallel()
	in := stacktest.Start(t, stacktest.Options{})
	alice := login(t, in.URL)
	names := []string{"Access_Token", "jwt", "apiKey", "x_token", "client_secret", "signature", "code",
		"AUTH", "token", "key", "password", "sig", "id_token", "api-key"}
	secrets := map[string]string{}
	query := "page=2"
	for _, n := range names {
		v := "s3cr3t" + random(t)
		secrets[n] = v
		query += "&" + n + "=" + v
	}
	referer := "https://app.example/callback?page=2&code=" + secrets["code"] + "&access_token=" + secrets["Access_Token"]
	marker := "zz" + random(t) // a harmless value to find the log lines by
	query += "&note=" + marker
	for _, target := range []struct {
		path string
		h    http.Header
	}{
		{"/api/v2/invoices", http.Header{"Authorization": {"Bearer " + alice.Access}, "Referer": {referer}}}, // 200
		{"/api/v2/invoices", http.Header{"Referer": {referer}}},                                              // 401
		{"/api/v1/auth/me", http.Header{"Authorization": {"Bearer " + alice.Access}}},                        // the auth service
		{"/nowhere", nil}, // 404
	} {
		send(t, http.MethodGet, in.URL+target.path+"?"+query, nil, target.h)
	}
	// the access log is written when each request ends: wait for the four lines
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lines = lines[:0]
		for l := range strings.SplitSeq(in.Logs(), "\n") {
			if strings.Contains(l, marker) && strings.Contains(l, `"http.log.access`) {
				lines = append(lines, l)
			}
		}
		if len(lines) == 4 {
			break
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d access log lines carry the marker, want 4", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(l, "page=2") {
			t.Errorf("the harmless parameter is gone: %s", l)
		}
	}
	logs := in.Logs()
	for n, v := range secrets {
		if strings.Contains(logs, v) {
			t.Errorf("the value of %s reached the log", n)
		}
	}
}
