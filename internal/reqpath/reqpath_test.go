package reqpath

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRule is the one table of the path rule: every encoding trick of
// SECURITY.md "Paths and methods", with what Check answers for the whole
// path and what Split answers below /api (the decoded segments when the
// path is canonical and below it).
func TestRule(t *testing.T) {
	t.Parallel()
	long := "/api/v1/invoices/" + strings.Repeat("a", MaxLen-len("/api/v1/invoices/"))
	deep := "/api" + strings.Repeat("/a", MaxSegments-1)
	for _, c := range []struct {
		name, path string
		want       Problem  // Check's answer; Split's too unless split says otherwise
		split      Problem  // Split's answer when it differs from want (NotBelow)
		segs       []string // Split's segments below /api when OK
	}{
		// canonical paths
		{"plain", "/api/v1/invoices", OK, OK, []string{"v1", "invoices"}},
		{"deeper", "/api/v1/invoices/inv_1/lines", OK, OK, []string{"v1", "invoices", "inv_1", "lines"}},
		{"one trailing slash names the same resource", "/api/v1/invoices/", OK, OK, []string{"v1", "invoices"}},
		{"root", "/", OK, NotBelow, nil},
		{"encoded space", "/api/invoices/inv%20x", OK, OK, []string{"invoices", "inv x"}},
		{"encoded sub-delim", "/api/v1/invoices/O%27Brien", OK, OK, []string{"v1", "invoices", "O'Brien"}},
		{"raw sub-delims, colon and at", "/api/v1/invoices/a!$&'()*+,=:@b", OK, OK, []string{"v1", "invoices", "a!$&'()*+,=:@b"}},
		{"encoded ; is data", "/api/v1/invoices/a%3Bb", OK, OK, []string{"v1", "invoices", "a;b"}},
		{"encoded ? and #", "/api/v1/invoices/a%3F%23", OK, OK, []string{"v1", "invoices", "a?#"}},
		{"dots inside a name", "/api/v1/invoices/..a", OK, OK, []string{"v1", "invoices", "..a"}},
		{"dots at a name's end", "/api/v1/invoices/a..", OK, OK, []string{"v1", "invoices", "a.."}},
		{"three dots is a name", "/api/v1/invoices/...", OK, OK, []string{"v1", "invoices", "..."}},
		{"UTF-8 data", "/api/v1/invoices/%C3%A9t%C3%A9", OK, OK, []string{"v1", "invoices", "été"}},
		{"lower-case hex is the same escape", "/api/v1/invoices/%c3%a9", OK, OK, []string{"v1", "invoices", "é"}},
		{"CJK data", "/api/v1/invoices/%E8%AB%8B%E6%B1%82", OK, OK, []string{"v1", "invoices", "請求"}},
		{"U+FFFD itself is valid UTF-8", "/api/v1/invoices/%EF%BF%BD", OK, OK, []string{"v1", "invoices", "\uFFFD"}},
		{"at the limit of bytes", long, OK, OK, []string{"v1", "invoices", long[len("/api/v1/invoices/"):]}},
		{"at the limit of segments", deep, OK, OK, slices.Repeat([]string{"a"}, MaxSegments-1)},

		// not below the prefix: canonical, but nothing of erp_version's
		{"the prefix alone", "/api", OK, NotBelow, nil},
		{"the prefix and a slash", "/api/", OK, NotBelow, nil},
		{"a longer first segment", "/apix/v1/invoices", OK, NotBelow, nil},
		{"elsewhere", "/other/v1", OK, NotBelow, nil},
		{"case of the prefix is significant", "/API/v1/invoices", OK, NotBelow, nil},
		{"case of a segment is kept", "/api/V1/Invoices", OK, OK, []string{"V1", "Invoices"}},

		// not absolute, too long
		{"empty", "", NotAbsolute, 0, nil},
		{"relative", "api/v1", NotAbsolute, 0, nil},
		{"asterisk form", "*", NotAbsolute, 0, nil},
		{"over the limit of bytes", long + "a", TooLong, 0, nil},
		{"over the limit of segments", deep + "/a", TooLong, 0, nil},

		// duplicate and trailing slashes
		{"duplicate slash after the prefix", "/api//v1", EmptySegment, 0, nil},
		{"duplicate slash inside", "/api/v1//invoices", EmptySegment, 0, nil},
		{"two trailing slashes", "/api/v1/invoices//", EmptySegment, 0, nil},
		{"leading duplicate slash", "//api/v1/invoices", EmptySegment, 0, nil},
		{"only slashes", "//", EmptySegment, 0, nil},
		{"prefix and two slashes", "/api//", EmptySegment, 0, nil},

		// dot segments, in any encoding
		{"dot", "/api/v1/./invoices", DotSegment, 0, nil},
		{"dot dot", "/api/v1/invoices/..", DotSegment, 0, nil},
		{"dot dot climbing out of the prefix", "/x/../api/v1/invoices", DotSegment, 0, nil},
		{"trailing dot", "/api/v1/.", DotSegment, 0, nil},
		{"dot dot slash at the end", "/api/v1/../", DotSegment, 0, nil},
		{"encoded dots", "/api/v1/invoices/%2e%2e", EncodedUnreserved, 0, nil},
		{"encoded dots upper case", "/api/v1/invoices/%2E%2E", EncodedUnreserved, 0, nil},
		{"encoded dot", "/api/v1/invoices/%2E", EncodedUnreserved, 0, nil},
		{"half encoded dots", "/api/v1/invoices/.%2e", EncodedUnreserved, 0, nil},
		{"encoded dot in a name", "/api/v1/invoices/a%2eb", EncodedUnreserved, 0, nil},
		{"double-encoded dots", "/api/v1/invoices/%252e%252e", DoubleEncoded, 0, nil},
		{"overlong UTF-8 dot", "/api/v1/invoices/%c0%ae%c0%ae", InvalidUTF8, 0, nil},
		{"overlong UTF-8 dot, three bytes", "/api/v1/invoices/%e0%80%ae", InvalidUTF8, 0, nil},
		{"full-width dots", "/api/v1/invoices/%EF%BC%8E%EF%BC%8E", LookAlike, 0, nil},
		{"one dot leader", "/api/v1/invoices/%E2%80%A4%E2%80%A4", LookAlike, 0, nil},
		{"two dot leader", "/api/v1/invoices/%E2%80%A5", LookAlike, 0, nil},
		{"small full stop", "/api/v1/invoices/%EF%B9%92", LookAlike, 0, nil},
		{"ideographic full stop", "/api/v1/invoices/%E3%80%82", LookAlike, 0, nil},

		// slashes and backslashes that are not separators
		{"encoded slash", "/api/v1/invoices/a%2fb", Separator, 0, nil},
		{"encoded slash upper case", "/api/v1%2Finvoices", Separator, 0, nil},
		{"traversal by encoded slashes", "/api/v1/invoices/x%2f..%2f..%2fcustomers", Separator, 0, nil},
		{"encoded backslash", "/api/v1/invoices/a%5Cb", Separator, 0, nil},
		{"encoded backslash lower case", "/api/v1/invoices/a%5cb", Separator, 0, nil},
		{"raw backslash", "/api/v1/invoices/a\\b", Separator, 0, nil},
		{"raw backslash dot dot", "/api/v1/invoices\\..\\customers", Separator, 0, nil},
		{"double-encoded slash", "/api/v1/invoices/a%252fb", DoubleEncoded, 0, nil},
		{"double-encoded backslash", "/api/v1/invoices/a%255cb", DoubleEncoded, 0, nil},
		{"encoded percent", "/api/v1/invoices/100%25", DoubleEncoded, 0, nil},
		{"overlong UTF-8 slash", "/api/v1/invoices/%c0%af", InvalidUTF8, 0, nil},
		{"full-width slash", "/api/v1/invoices/a%EF%BC%8Fb", LookAlike, 0, nil},
		{"full-width backslash", "/api/v1/invoices/a%EF%BC%BCb", LookAlike, 0, nil},
		{"small reverse solidus", "/api/v1/invoices/a%EF%B9%A8b", LookAlike, 0, nil},
		{"division slash", "/api/v1/invoices/a%E2%88%95b", LookAlike, 0, nil},
		{"fraction slash", "/api/v1/invoices/a%E2%81%84b", LookAlike, 0, nil},
		{"big solidus", "/api/v1/invoices/a%E2%A7%B8b", LookAlike, 0, nil},
		{"set minus", "/api/v1/invoices/a%E2%88%96b", LookAlike, 0, nil},
		{"reverse solidus operator", "/api/v1/invoices/a%E2%A7%B5b", LookAlike, 0, nil},

		// percent-encoded unreserved characters and other look-alikes
		{"encoded letter", "/api/v1/invoices/%41", EncodedUnreserved, 0, nil},
		{"encoded letter in the backend name", "/api/v1/%69nvoices", EncodedUnreserved, 0, nil},
		{"encoded letter in the prefix", "/%61pi/v1/invoices", EncodedUnreserved, 0, nil},
		{"encoded digit", "/api/v%31/invoices", EncodedUnreserved, 0, nil},
		{"encoded tilde", "/api/v1/invoices/%7e", EncodedUnreserved, 0, nil},
		{"encoded hyphen", "/api/v1/invoices/a%2Db", EncodedUnreserved, 0, nil},
		{"encoded underscore", "/api/v1/invoices/inv%5F1", EncodedUnreserved, 0, nil},
		{"full-width letters", "/api/v1/%EF%BD%89nvoices", LookAlike, 0, nil},
		{"full-width digit", "/api/v%EF%BC%91/invoices", LookAlike, 0, nil},
		{"Kelvin sign", "/api/v1/invoices/%E2%84%AA", LookAlike, 0, nil},
		{"ligature", "/api/v1/invoices/%EF%AC%81le", LookAlike, 0, nil},
		{"full-width percent", "/api/v1/invoices/%EF%BC%85%EF%BC%92%EF%BC%A5", LookAlike, 0, nil},
		{"full-width semicolon", "/api/v1/invoices/a%EF%BC%9Bb", LookAlike, 0, nil},
		{"Greek question mark (a semicolon)", "/api/v1/invoices/a%CD%BEb", LookAlike, 0, nil},
		{"no-break space", "/api/v1/invoices/a%C2%A0b", LookAlike, 0, nil},

		// NUL and control bytes, raw and encoded; Unicode controls
		{"encoded NUL", "/api/v1/invoices/a%00", Control, 0, nil},
		{"encoded CR LF", "/api/v1/invoices/a%0d%0aSet-Cookie:x", Control, 0, nil},
		{"encoded tab", "/api/v1/invoices/a%09", Control, 0, nil},
		{"encoded DEL", "/api/v1/invoices/a%7F", Control, 0, nil},
		{"raw NUL", "/api/v1/invoices/a\x00", Control, 0, nil},
		{"raw tab", "/api/v1/invoices/a\tb", Control, 0, nil},
		{"raw DEL", "/api/v1/invoices/a\x7f", Control, 0, nil},
		{"C1 control NEL", "/api/v1/invoices/a%C2%85", Control, 0, nil},
		{"zero-width space", "/api/v1/invoices/a%E2%80%8Bb", Control, 0, nil},
		{"right-to-left override", "/api/v1/invoices/a%E2%80%AEb", Control, 0, nil},
		{"line separator", "/api/v1/invoices/a%E2%80%A8b", Control, 0, nil},
		{"byte order mark", "/api/v1/invoices/%EF%BB%BFinv", Control, 0, nil},

		// invalid escapes
		{"not hex", "/api/v1/invoices/%zz", BadEscape, 0, nil},
		{"one hex digit", "/api/v1/invoices/%4", BadEscape, 0, nil},
		{"one hex digit then a slash", "/api/v1/%4/invoices", BadEscape, 0, nil},
		{"percent at the end", "/api/%", BadEscape, 0, nil},
		{"half hex", "/api/v1/invoices/%4g", BadEscape, 0, nil},
		{"lone continuation byte", "/api/v1/invoices/%80", InvalidUTF8, 0, nil},
		{"truncated sequence", "/api/v1/invoices/%C3", InvalidUTF8, 0, nil},
		{"encoded surrogate", "/api/v1/invoices/%ED%A0%80", InvalidUTF8, 0, nil},

		// ; path parameters
		{"path parameter", "/api/v1/invoices;x=1", PathParameter, 0, nil},
		{"dot dot path parameter", "/api/v1/x/..;/invoices", PathParameter, 0, nil},
		{"session id parameter", "/api/v1/invoices/inv_1;jsessionid=abc", PathParameter, 0, nil},

		// raw characters that must be encoded
		{"raw space", "/api/v1/invoices/a b", RawCharacter, 0, nil},
		{"raw quote", "/api/v1/invoices/a\"b", RawCharacter, 0, nil},
		{"raw brackets", "/api/v1/invoices/a[0]", RawCharacter, 0, nil},
		{"raw question mark", "/api/v1/invoices/a?b", RawCharacter, 0, nil},
		{"raw hash", "/api/v1/invoices/a#b", RawCharacter, 0, nil},
		{"raw non-ASCII", "/api/v1/invoices/\xc3\xa9", RawCharacter, 0, nil},
		{"raw full-width dot", "/api/v1/invoices/\uff0e\uff0e", RawCharacter, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := Check(c.path); got != c.want {
				t.Errorf("Check(%q) = %v, want %v", c.path, got, c.want)
			}
			wantSplit := c.want
			if c.want == OK {
				wantSplit = c.split
			}
			var buf [MaxSegments]string
			segs, got := Split(c.path, "/api", buf[:])
			if got != wantSplit || !slices.Equal(segs, c.segs) {
				t.Errorf("Split(%q) = %q, %v; want %q, %v", c.path, segs, got, c.segs, wantSplit)
			}
		})
	}
}

// TestStatusAndMessage: refusals are 400 but for length (414); the
// message never repeats the path.
func TestStatusAndMessage(t *testing.T) {
	t.Parallel()
	for p := OK; p <= LookAlike; p++ {
		want := 400
		switch p {
		case OK:
			want = 200
		case NotBelow:
			want = 404
		case TooLong:
			want = 414
		}
		if p.Status() != want || p.Message() == "" || p.Message() == Problem(255).Message() {
			t.Errorf("%d: %d %q", p, p.Status(), p.Message())
		}
	}
	if Problem(255).Status() != 400 {
		t.Error("an unknown problem is a refusal")
	}
}

func TestSplitOtherPrefixes(t *testing.T) {
	t.Parallel()
	var buf [MaxSegments]string
	if segs, p := Split("/v1/invoices", "", buf[:]); p != OK || !slices.Equal(segs, []string{"v1", "invoices"}) {
		t.Errorf("no prefix: %q %v", segs, p)
	}
	if segs, p := Split("/erp/api/v1/invoices", "/erp/api", buf[:]); p != OK || !slices.Equal(segs, []string{"v1", "invoices"}) {
		t.Errorf("two-segment prefix: %q %v", segs, p)
	}
	if _, p := Split("/erp/api", "/erp/api", buf[:]); p != NotBelow {
		t.Errorf("the prefix alone: %v", p)
	}
	small := make([]string, 2)
	if _, p := Split("/api/a/b/c", "/api", small); p != TooLong {
		t.Errorf("more segments than buf: %v", p)
	}
}

func TestPlain(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/invoices":          true,
		"/odata/v1/Products": true,
		"/a-b_c.d~e":         true,
		"/a$b&c+d:e=f@g":     true,
		"/":                  false, // callers treat the root themselves
		"":                   false,
		"invoices":           false,
		"/invoices/":         false,
		"/a//b":              false,
		"/a/./b":             false,
		"/a/../b":            false,
		"/a%20b":             false,
		"/a%2Fb":             false,
		"/a;b":               false,
		"/a(b)":              false,
		"/a,b":               false,
		"/a!b":               false,
		"/a'b":               false,
		"/a*b":               false,
		"/a b":               false,
		"/a\\b":              false,
		"/\xc3\xa9":          false,
	} {
		if got := Plain(p); got != want {
			t.Errorf("Plain(%q) = %v, want %v", p, got, want)
		}
	}
}

// FuzzCheck holds every accepted path to net/url's reading of it: it
// decodes, its segments decode to no separator, dot segment or invalid
// UTF-8, and Split's segments are net/url's.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"/api/v1/invoices", "/api/v1/invoices/", "/api/%C3%A9", "/api/%2e", "/api/a%2fb", "/a;b", "/a/../b", "/%c0%ae", "/%EF%BC%8E", "//", "/api/x%20y/%3B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if Check(p) != OK {
			return
		}
		if _, err := url.PathUnescape(p); err != nil {
			t.Fatalf("%q accepted, net/url: %v", p, err)
		}
		var want []string
		for i, raw := range strings.Split(p[1:], "/") {
			if raw == "" && i == strings.Count(p[1:], "/") {
				continue // one trailing slash (or the root)
			}
			seg, err := url.PathUnescape(raw)
			if err != nil || seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\%") ||
				strings.ContainsFunc(seg, func(r rune) bool { return r < 0x20 || r == 0x7f }) || !utf8.ValidString(seg) {
				t.Fatalf("%q accepted: segment %q decodes to %q", p, raw, seg)
			}
			want = append(want, seg)
		}
		var buf [MaxSegments]string
		segs, sp := Split(p, "", buf[:])
		if len(want) == 0 {
			if sp != NotBelow {
				t.Fatalf("Split(%q) = %v, want NotBelow", p, sp)
			}
			return
		}
		if sp != OK || !slices.Equal(segs, want) {
			t.Fatalf("Split(%q) = %q %v, net/url reads %q", p, segs, sp, want)
		}
	})
}

func BenchmarkCheck(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if Check("/api/v2/invoices/inv_acme_0001/lines") != OK || Check("/api/v1/invoices/O%27Brien%20x") != OK {
			b.Fatal()
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var buf [MaxSegments]string
		if _, p := Split("/api/v2/invoices/inv_acme_0001/lines", "/api", buf[:]); p != OK {
			b.Fatal()
		}
		if _, p := Split("/api/v1/invoices/O%27Brien%20x", "/api", buf[:]); p != OK {
			b.Fatal()
		}
	}
}
