package redactquery

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap/zapcore"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	r, err := Compile([]string{DefaultWord}, "REDACTED")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"/api/v1/invoices":                                                     "/api/v1/invoices",
		"/api/v1/invoices?page=2&limit=10":                                     "/api/v1/invoices?page=2&limit=10",
		"/a?Access_Token=t1&page=2":                                            "/a?Access_Token=REDACTED&page=2",
		"/a?jwt=j&apiKey=k&x_token=x":                                          "/a?jwt=REDACTED&apiKey=REDACTED&x_token=REDACTED",
		"/a?client_secret=s&signature=g&code=c":                                "/a?client_secret=REDACTED&signature=REDACTED&code=REDACTED",
		"/a?AUTHORIZATION=Bearer%20x":                                          "/a?AUTHORIZATION=REDACTED",
		"/a?password=p&pwd=q&Passwd=r":                                         "/a?password=REDACTED&pwd=REDACTED&Passwd=REDACTED",
		"/a?sig=s&X-Amz-Signature=a&X-Amz-Credential=c&X-Amz-Security-Token=t": "/a?sig=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED",
		"/a?%61ccess_token=t&page=2":                                           "/a?%61ccess_token=REDACTED&page=2", // an escaped name
		"/a?token=a;key=b":                                                     "/a?token=REDACTED;key=REDACTED",    // ; separates for some parsers
		"/a?token=a#id_token=b":                                                "/a?token=REDACTED#id_token=REDACTED",
		"/a#access_token=f":                                                    "/a#access_token=REDACTED",
		"/a?token=&token&page=1":                                               "/a?token=&token&page=1", // nothing to hide
		"/a?token=1&token=2":                                                   "/a?token=REDACTED&token=REDACTED",
		"https://app.example/cb?code=c&state=s":                                "https://app.example/cb?code=REDACTED&state=s",
		"/a?%zz=1&token=2":                                                     "/a?%zz=1&token=REDACTED",
		"/a?sort=name&filter=status:open":                                      "/a?sort=name&filter=status:open",
	}
	for in, want := range cases {
		if got := r.Redact(in); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestRedactHeader(t *testing.T) {
	t.Parallel()
	r, _ := Compile([]string{DefaultWord}, "REDACTED")
	in := `</api/v2/invoices?jwt=a&page=1>; rel="first", </api/v2/invoices?jwt=a&page=3&x_token=b>; rel="next"`
	want := `</api/v2/invoices?jwt=REDACTED&page=1>; rel="first", </api/v2/invoices?jwt=REDACTED&page=3&x_token=REDACTED>; rel="next"`
	if got := r.RedactHeader(in); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := r.RedactHeader("https://a.example/?code=c"); got != "https://a.example/?code=REDACTED" {
		t.Fatal(got)
	}
	if got := r.RedactHeader("/a?x=1?token=t"); got != "/a?x=1?token=REDACTED" {
		t.Fatal(got)
	}
}

func TestPatterns(t *testing.T) {
	t.Parallel()
	r, err := Compile([]string{"x-goog-*", "*_sid", "exact"}, "-")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"X-Goog-Signature": true, "my_sid": true, "Exact": true, "exactly": false, "token": false, "sid": false,
	} {
		if r.Matches(name) != want {
			t.Errorf("%s: want %v", name, want)
		}
	}
	for _, bad := range []string{"", "*", "**", "a*b", "a=b"} {
		if _, err := Compile([]string{bad}, ""); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestFilterFields: a string field (request>uri) and a logged header (a
// named []string, as Caddy's own type is).
func TestFilterFields(t *testing.T) {
	t.Parallel()
	f := &Filter{}
	if err := f.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	out := f.Filter(zapcore.Field{Key: "uri", Type: zapcore.StringType, String: "/x?token=abc&page=2"})
	if out.String != "/x?token=REDACTED&page=2" {
		t.Fatalf("uri: %q", out.String)
	}
	type loggable []string
	out = f.Filter(zapcore.Field{Key: "Referer", Type: zapcore.ArrayMarshalerType, Interface: loggable{"https://a.example/p?jwt=abc&page=2"}})
	arr, ok := out.Interface.(stringArray)
	if !ok || len(arr) != 1 || strings.Contains(arr[0], "abc") || !strings.Contains(arr[0], "page=2") {
		t.Fatalf("referer: %#v", out.Interface)
	}
}

func BenchmarkRedactNoMatch(b *testing.B) {
	r, _ := Compile([]string{DefaultWord}, "REDACTED")
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Redact("/api/v2/invoices?page=2&limit=50&sort=-date")
	}
}
