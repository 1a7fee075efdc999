package redactquery

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultPatterns are the parameter names taken for credentials unless the
// configuration says otherwise (compared lower-cased; `*` at either end is a
// wildcard).
var DefaultPatterns = []string{
	"jwt", "bearer", "code", "auth*", "*token*", "*key*", "*secret*",
	"*password*", "passwd", "pwd", "sig*", "*signature*", "*credential*", "session*",
}

// DefaultWord in a configured list stands for DefaultPatterns.
const DefaultWord = "default"

// pattern is one compiled name pattern.
type pattern struct {
	text           string // lower-cased, without the stars
	prefix, suffix bool   // a star after (prefix) or before (suffix) the text
}

func (p pattern) match(name string) bool {
	switch {
	case p.prefix && p.suffix:
		return strings.Contains(name, p.text)
	case p.prefix:
		return strings.HasPrefix(name, p.text)
	case p.suffix:
		return strings.HasSuffix(name, p.text)
	}
	return name == p.text
}

// Redactor replaces the values of credential-like query parameters in URLs.
type Redactor struct {
	patterns []pattern
	value    string
}

// Compile builds a Redactor of patterns (DefaultWord expanded) that writes
// value in place of each matched parameter's value.
func Compile(patterns []string, value string) (*Redactor, error) {
	r := &Redactor{value: value}
	for _, s := range patterns {
		if s == DefaultWord {
			for _, d := range DefaultPatterns {
				p, _ := compileOne(d)
				r.patterns = append(r.patterns, p)
			}
			continue
		}
		p, err := compileOne(s)
		if err != nil {
			return nil, err
		}
		r.patterns = append(r.patterns, p)
	}
	return r, nil
}

func compileOne(s string) (pattern, error) {
	p := pattern{text: strings.ToLower(s)}
	p.text, p.suffix = strings.CutPrefix(p.text, "*")
	p.text, p.prefix = strings.CutSuffix(p.text, "*")
	if p.text == "" {
		return p, errors.New("an empty pattern")
	}
	if strings.ContainsAny(p.text, "*&=?# ") {
		return p, fmt.Errorf("pattern %q: a * only at either end, no &, =, ?, # or space", s)
	}
	return p, nil
}

// Matches reports whether a (decoded) parameter name is a credential's.
func (r *Redactor) Matches(name string) bool {
	lower := strings.ToLower(name)
	for _, p := range r.patterns {
		if p.match(lower) {
			return true
		}
	}
	return false
}

// Redact returns s (a request-target or an absolute URL) with
// the value of every matched parameter replaced. Parameters are read after
// the first `?` or `#`, separated by `&`, `;`, `#` or `?`, names percent-decoded
// before they are compared — looser than any backend's parser, so a value
// some backend would read as a credential is not left in the log. Nothing
// else changes; a string without a match is returned as it is.
func (r *Redactor) Redact(s string) string {
	start := strings.IndexAny(s, "?#")
	if start < 0 {
		return s
	}
	var b []byte // built only on the first match
	last := 0    // s[:last] is in b
	i := start + 1
	for i <= len(s) {
		end := i
		for end < len(s) && s[end] != '&' && s[end] != ';' && s[end] != '#' && s[end] != '?' {
			end++
		}
		pair := s[i:end]
		if eq := strings.IndexByte(pair, '='); eq >= 0 && eq+1 < len(pair) {
			name := pair[:eq]
			if dec, err := url.QueryUnescape(name); err == nil {
				name = dec
			}
			if r.Matches(name) {
				if b == nil {
					b = make([]byte, 0, len(s))
				}
				b = append(b, s[last:i+eq+1]...)
				b = append(b, r.value...)
				last = end
			}
		}
		i = end + 1
	}
	if b == nil {
		return s
	}
	b = append(b, s[last:]...)
	return string(b)
}

// RedactHeader is Redact for a logged header value: a list of `<URL>`
// references (Link) has each URL redacted; anything else is one URL.
func (r *Redactor) RedactHeader(s string) string {
	if !strings.HasPrefix(strings.TrimSpace(s), "<") {
		return r.Redact(s)
	}
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '>')
		if end < 0 {
			break
		}
		end += open
		b.WriteString(s[:open+1])
		b.WriteString(r.Redact(s[open+1 : end]))
		s = s[end:]
	}
	b.WriteString(s)
	return b.String()
}
