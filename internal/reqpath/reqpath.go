// Package reqpath is the edge's one rule for request paths: it decides
// whether an escaped request path (http.Request.URL.EscapedPath) is in
// canonical form and splits it into decoded segments. erp_authz checks with
// Check, erp_version routes with Split, and the erp app validates
// configured paths with Plain; nothing else at the edge reads a path's
// structure, so what is authorised and what is routed can never disagree.
//
// It imports only the standard library and golang.org/x/text/unicode/norm;
// it must not import Caddy or any erpgate package (the modules import it).
//
// # The rule
//
// A path is refused, never cleaned: a request is authorised and routed
// exactly as the client spelled it, or not at all (SECURITY.md category 7).
// What may differ between two spellings of one resource without changing
// its meaning is accepted; everything another reader (a backend framework,
// a proxy, a file system) could read differently is refused.
//
// Accepted and equivalent to the canonical form:
//   - the hex digits of an escape in either case: %c3%a9 is %C3%A9 (the
//     decoded segments are the same bytes, and dialects re-escape them in
//     upper case for the backend);
//   - one trailing slash: /api/v1/invoices/ names /api/v1/invoices.
//
// Refused (each with its Problem):
//   - not starting with "/" (NotAbsolute), longer than MaxLen bytes or
//     MaxSegments segments (TooLong);
//   - "%" not followed by two hex digits: %zz, %4 (BadEscape);
//   - an escape of a character that needs none (RFC 3986 §2.3 unreserved:
//     letters, digits, "-", ".", "_", "~"): %41, and so every encoded dot
//     %2e/%2E (EncodedUnreserved);
//   - a slash or backslash that is not a separator: %2F, %5C, raw "\"
//     (Separator);
//   - an encoded "%" (%25): it is double encoding, %252e or %252f, which a
//     second decoder would read as a dot or a slash (DoubleEncoded);
//   - a control character raw or encoded (%00, %0d%0a, %7f), or a Unicode
//     control, format or line-separator character such as U+0085, U+200B,
//     U+202E or U+2028 (Control);
//   - a raw character that RFC 3986 requires to be percent-encoded in a path
//     (space, '"', '<', '>', '[', ']', '{', '}', '|', '^', '`', '#', '?',
//     non-ASCII bytes), which a client sending the canonical form never
//     sends (RawCharacter);
//   - a raw ";": a path parameter that Servlet containers and others strip
//     before routing (/x/..;/y is /y to them); an encoded %3B is data and
//     stays (PathParameter);
//   - an empty segment, i.e. a duplicate slash anywhere, or two trailing
//     slashes (EmptySegment);
//   - a "." or ".." segment; encoded dots are already refused above, and
//     "..a" or "a.." are names, not dot segments (DotSegment);
//   - decoded bytes that are not valid UTF-8, such as the overlong %C0%AE
//     for "." (InvalidUTF8);
//   - a character that a Unicode-normalising reader turns into ASCII or
//     that looks like a separator: any character whose NFKC form contains
//     an ASCII character (full-width letters and digits, FULLWIDTH FULL
//     STOP U+FF0E, FULLWIDTH SOLIDUS U+FF0F, ONE DOT LEADER U+2024, SMALL
//     FULL STOP U+FE52, ligatures such as U+FB01), and the slashes and dots
//     NFKC leaves alone (DIVISION SLASH U+2215, FRACTION SLASH U+2044, BIG
//     SOLIDUS U+29F8, REVERSE SOLIDUS OPERATOR U+29F5, SET MINUS U+2216,
//     IDEOGRAPHIC FULL STOP U+3002) (LookAlike). Other non-ASCII text, such
//     as %C3%A9 (é), is data and stays.
//
// Case is significant everywhere else: /API/v1/invoices is not below the
// prefix /api and /api/v1/INVOICES names no backend; both are answered as
// unknown (404), not folded onto the lower-case resource.
//
// The checks run in one pass over the bytes, left to right; the first
// problem found is the one reported. A path whose segments hold no escape
// is checked and split without allocating.
package reqpath

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits of a canonical path. Longer paths are refused with TooLong.
const (
	// MaxLen is the longest escaped path accepted, in bytes.
	MaxLen = 4096
	// MaxSegments is the most segments a path may have, the prefix's
	// included (/api/v1/invoices has three). Split's buffer should hold it.
	MaxSegments = 32
)

// Problem says why a path is not canonical; OK when it is.
type Problem uint8

// The problems, in the package doc's terms.
const (
	OK Problem = iota
	// NotBelow (Split only): a canonical path that is not below the
	// prefix, or has nothing after it. It names no resource there (404),
	// it is not malformed.
	NotBelow
	NotAbsolute
	TooLong
	BadEscape
	EncodedUnreserved
	Separator
	DoubleEncoded
	Control
	RawCharacter
	PathParameter
	EmptySegment
	DotSegment
	InvalidUTF8
	LookAlike
)

var messages = [...]string{
	OK:                "the path is canonical",
	NotBelow:          "no such resource",
	NotAbsolute:       "the path must start with /",
	TooLong:           "the path is too long (at most 4096 bytes and 32 segments)",
	BadEscape:         "the path has an invalid percent-escape (% must be followed by two hex digits)",
	EncodedUnreserved: "the path percent-encodes a letter, digit or one of - . _ ~ (send them unencoded)",
	Separator:         "the path has a slash or backslash that is not a separator (\\, %2F or %5C)",
	DoubleEncoded:     "the path has an encoded percent sign (%25): double encoding is refused",
	Control:           "the path has a control or invisible formatting character",
	RawCharacter:      "the path has a character that must be percent-encoded",
	PathParameter:     "the path has a ; path parameter (encode it as %3B if it is data)",
	EmptySegment:      "the path has an empty segment (a duplicate slash)",
	DotSegment:        "the path has a . or .. segment",
	InvalidUTF8:       "the path decodes to invalid UTF-8 (such as an overlong encoding)",
	LookAlike:         "the path has a Unicode character that reads as, or looks like, an ASCII character, dot or slash",
}

// Message is a sentence for the client saying what is wrong. It describes
// the rule only; it never repeats the path.
func (p Problem) Message() string {
	if int(p) < len(messages) {
		return messages[p]
	}
	return "the path is not in canonical form"
}

// String is Message, for logs and test failures.
func (p Problem) String() string { return p.Message() }

// Status is the HTTP status of a refusal for p: 404 for NotBelow, 414 for
// TooLong, 400 for any other problem, 200 for OK.
func (p Problem) Status() int {
	switch p {
	case OK:
		return 200
	case NotBelow:
		return 404
	case TooLong:
		return 414
	}
	return 400
}

// Check reports whether the escaped path is canonical, and if not, why.
func Check(escaped string) Problem {
	_, p := scan(escaped, -1, nil)
	return p
}

// Split checks the whole escaped path like Check and, when it is canonical
// and below prefix + "/", returns its segments after the prefix, decoded,
// in buf's storage: at least one, without the empty segment of a trailing
// slash. prefix is a canonical path without a trailing slash ("/api"),
// compared case-sensitively. A canonical path not below the prefix (or
// with nothing after it) gives NotBelow. A non-canonical path gives its
// problem whatever the prefix, so Split and Check never disagree. Only
// segments holding an escape are allocated (decoded copies); give buf
// MaxSegments elements so that no segment needs more room.
func Split(escaped, prefix string, buf []string) ([]string, Problem) {
	from := -1 // not below: check only
	if rest, ok := strings.CutPrefix(escaped, prefix); ok && len(rest) >= 2 && rest[0] == '/' && rest != "//" {
		from = len(prefix) + 1
	}
	segs, p := scan(escaped, from, buf[:0])
	if p != OK {
		return nil, p
	}
	if from < 0 || len(segs) == 0 {
		return nil, NotBelow
	}
	return segs, OK
}

// Plain reports whether p suits a configured path that the edge joins to
// request paths (a backend's path, an upstream's base path, a successor):
// canonical, at least one segment, no trailing slash, and only characters
// that url.PathEscape leaves as they are (RFC 3986 unreserved and
// "$&+:=@"), so it has no escape to decode and dialects send it upstream
// unchanged.
func Plain(p string) bool {
	if len(p) < 2 || p[len(p)-1] == '/' || Check(p) != OK {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '/' && class[c]&plain == 0 {
			return false
		}
	}
	return true
}

// Byte classes of the scan.
const (
	unreserved = 1 << iota // RFC 3986 §2.3: ALPHA DIGIT - . _ ~
	pchar                  // allowed raw in a canonical segment: unreserved, sub-delims but ';', ':' and '@'
	plain                  // left unescaped by url.PathEscape: unreserved and $ & + : = @
	hex                    // 0-9 a-f A-F
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("-._~", b) >= 0 {
			t[c] |= unreserved | pchar | plain
		}
		if strings.IndexByte("!$&'()*+,=:@", b) >= 0 {
			t[c] |= pchar
		}
		if strings.IndexByte("$&+:=@", b) >= 0 {
			t[c] |= plain
		}
		if b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' {
			t[c] |= hex
		}
	}
	return t
}()

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// scan checks the escaped path and, when collect is non-nil, appends the
// decoded segments that start at byte from or later.
func scan(p string, from int, collect []string) ([]string, Problem) {
	if p == "" || p[0] != '/' {
		return nil, NotAbsolute
	}
	if len(p) > MaxLen {
		return nil, TooLong
	}
	nseg := 0
	for start := 1; start <= len(p); {
		// one segment: p[start:end]
		end, escapes, high := start, false, false
		for ; end < len(p) && p[end] != '/'; end++ {
			c := p[end]
			if class[c]&pchar != 0 {
				continue
			}
			switch {
			case c == '%':
				if end+2 >= len(p) || class[p[end+1]]&hex == 0 || class[p[end+2]]&hex == 0 {
					return nil, BadEscape
				}
				d := unhex(p[end+1])<<4 | unhex(p[end+2])
				switch {
				case class[d]&unreserved != 0:
					return nil, EncodedUnreserved
				case d == '/' || d == '\\':
					return nil, Separator
				case d == '%':
					return nil, DoubleEncoded
				case d < 0x20 || d == 0x7f:
					return nil, Control
				case d >= 0x80:
					high = true
				}
				escapes = true
				end += 2
			case c < 0x20 || c == 0x7f:
				return nil, Control
			case c == '\\':
				return nil, Separator
			case c == ';':
				return nil, PathParameter
			default:
				return nil, RawCharacter
			}
		}
		seg := p[start:end]
		switch {
		case seg == "":
			// the end of a path with one trailing slash (or the root "/")
			// is the only empty segment allowed
			if end != len(p) || (start > 1 && p[start-2] == '/') {
				return nil, EmptySegment
			}
		case seg == "." || seg == "..":
			return nil, DotSegment
		default:
			if nseg++; nseg > MaxSegments {
				return nil, TooLong
			}
			keep := collect != nil && from >= 0 && start >= from
			if escapes && (high || keep) {
				seg = decode(seg)
				if high {
					if pr := checkUnicode(seg); pr != OK {
						return nil, pr
					}
				}
			}
			if keep {
				if len(collect) == cap(collect) {
					return nil, TooLong
				}
				collect = append(collect, seg)
			}
		}
		start = end + 1
	}
	return collect, OK
}

// decode unescapes a segment whose escapes scan has checked.
func decode(seg string) string {
	var b strings.Builder
	b.Grow(len(seg))
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(unhex(seg[i+1])<<4 | unhex(seg[i+2]))
		i += 2
	}
	return b.String()
}

// checkUnicode checks the non-ASCII text of a decoded segment.
func checkUnicode(s string) Problem {
	var nfkc [64]byte
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return InvalidUTF8
		}
		if r >= utf8.RuneSelf {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
				return Control
			}
			if lookAlike(r) {
				return LookAlike
			}
			for _, c := range norm.NFKC.AppendString(nfkc[:0], s[i:i+n]) {
				if c < utf8.RuneSelf {
					return LookAlike
				}
			}
		}
		i += n
	}
	return OK
}

// lookAlike: dots and slashes that NFKC leaves as they are.
func lookAlike(r rune) bool {
	switch r {
	case '\u2215', // DIVISION SLASH
		'\u2044', // FRACTION SLASH
		'\u29F8', // BIG SOLIDUS
		'\u29F5', // REVERSE SOLIDUS OPERATOR
		'\u29F9', // BIG REVERSE SOLIDUS
		'\u2216', // SET MINUS
		'\u3002', // IDEOGRAPHIC FULL STOP (IDNA maps it to ".")
		'\u0338': // COMBINING LONG SOLIDUS OVERLAY
		return true
	}
	return false
}
