package envelope

import "io"

// Stream copies a JSON document to an io.Writer while validating it, with
// memory bounded by nesting depth — not by document size. It never emits
// invalid JSON: when the input is broken or stops early, Finish completes the
// document (closing an open string and every open container, writing null for
// a value that was owed) so that what the client received still parses.
//
// Whitespace outside strings is dropped. A comma is held back until the next
// element starts, so a truncated element never leaves a dangling comma.
// Literal and number tokens are held until complete (at most maxToken bytes; a longer number is refused).
type Stream struct {
	w     io.Writer
	out   []byte
	stack []byte // '[' or '{' per open container

	state        uint8
	owed         bool // a value is required here (after ':' or at the top)
	pendingComma bool
	tok          []byte // incomplete literal, number or escape sequence
	started      bool   // the top-level value started
	err          bool   // the input was invalid; the rest is discarded
	werr         error  // the writer failed
}

const (
	stValue      uint8 = iota // a value must start (owed) or may (after ',' in an array)
	stValueOrEnd              // after '[': a value or ']'
	stKeyOrEnd                // after '{': a key or '}'
	stKey                     // after ',' in an object: a key
	stColon                   // after a key: ':'
	stAfter                   // after a value: ',' or a closer (or nothing at the top)
	stString                  // inside a value string
	stKeyString               // inside a key string
	stEscape                  // inside an escape sequence (of a string or a key)
	stToken                   // inside a literal or number
	stEnd                     // top-level value complete

	maxDepth = 512
	maxToken = 4096
	flushAt  = 32 << 10
)

// NewStream returns a Stream writing to w.
func NewStream(w io.Writer) *Stream {
	return &Stream{w: w, owed: true, out: make([]byte, 0, flushAt+1024), stack: make([]byte, 0, 16)}
}

// Reset reuses s for a new document written to w.
func (s *Stream) Reset(w io.Writer) {
	*s = Stream{w: w, owed: true, out: s.out[:0], stack: s.stack[:0], tok: s.tok[:0]}
}

// Valid reports whether the input so far was valid (and, after Finish, complete).
func (s *Stream) Valid() bool { return !s.err }

// Write consumes p. It always reports len(p) consumed unless the underlying
// writer failed, so that a broken upstream body is drained rather than aborted.
func (s *Stream) Write(p []byte) (int, error) {
	if s.werr != nil {
		return 0, s.werr
	}
	if !s.err {
		s.scan(p)
	}
	if len(s.out) >= flushAt {
		s.flush()
	}
	if s.werr != nil {
		return 0, s.werr
	}
	return len(p), nil
}

func (s *Stream) flush() {
	if len(s.out) == 0 || s.werr != nil {
		s.out = s.out[:0]
		return
	}
	_, s.werr = s.w.Write(s.out)
	s.out = s.out[:0]
}

// Finish completes the document and flushes. It reports whether the input was
// one complete, valid JSON value.
func (s *Stream) Finish() (bool, error) {
	if !s.err && s.state == stToken {
		s.endToken()
	}
	if s.state != stEnd {
		s.err = true
		s.repair()
	}
	s.flush()
	return !s.err, s.werr
}

func (s *Stream) fail() {
	s.err = true
	s.repair()
	s.state = stEnd
}

// repair closes what is open, after the input turned out invalid or ended early.
func (s *Stream) repair() {
	switch s.state {
	case stString:
		s.out = append(s.out, '"')
		s.owed = false
	case stKeyString:
		s.out = append(s.out, `":null`...)
		s.owed = false
	case stEscape:
		if s.stackTopIsKeyString() {
			s.out = append(s.out, `":null`...)
		} else {
			s.out = append(s.out, '"')
		}
		s.owed = false
	case stColon:
		s.out = append(s.out, `:null`...)
		s.owed = false
	}
	if s.owed {
		s.out = append(s.out, "null"...)
		s.owed = false
	}
	for i := len(s.stack) - 1; i >= 0; i-- {
		if s.stack[i] == '[' {
			s.out = append(s.out, ']')
		} else if s.stack[i] == '{' {
			s.out = append(s.out, '}')
		}
	}
	s.stack = s.stack[:0]
	s.tok = s.tok[:0]
	s.state = stEnd
}

// escapeOfKey remembers, while in stEscape, whether the string is a key: it is
// pushed on the stack as 'k' (key) or 's' (value) for the escape's duration.
func (s *Stream) stackTopIsKeyString() bool {
	return len(s.stack) > 0 && s.stack[len(s.stack)-1] == 'k'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *Stream) scan(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.state {
		case stString, stKeyString:
			// fast path: copy a run of ordinary string bytes
			j := i
			for j < len(p) && p[j] != '"' && p[j] != '\\' && p[j] >= 0x20 {
				j++
			}
			s.out = append(s.out, p[i:j]...)
			if j == len(p) {
				return
			}
			i = j
			c = p[i]
			switch {
			case c == '"':
				s.out = append(s.out, '"')
				if s.state == stKeyString {
					s.state = stColon
				} else {
					s.valueDone()
				}
			case c == '\\':
				kind := byte('s')
				if s.state == stKeyString {
					kind = 'k'
				}
				s.stack = append(s.stack, kind)
				s.tok = append(s.tok[:0], '\\')
				s.state = stEscape
			default: // control character
				s.fail()
				return
			}
		case stEscape:
			s.tok = append(s.tok, c)
			if len(s.tok) == 2 {
				switch c {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					s.endEscape()
				case 'u':
				default:
					s.fail()
					return
				}
			} else {
				if !isHex(c) {
					s.fail()
					return
				}
				if len(s.tok) == 6 {
					s.endEscape()
				}
			}
		case stToken:
			if isTokenByte(c) {
				if len(s.tok) >= maxToken {
					s.fail()
					return
				}
				s.tok = append(s.tok, c)
				continue
			}
			if !s.endToken() {
				return
			}
			i-- // re-read the delimiter in the new state
		default:
			if isSpace(c) {
				continue
			}
			if !s.structural(c) {
				return
			}
		}
		if s.err {
			return
		}
	}
}

func (s *Stream) endEscape() {
	kind := s.stack[len(s.stack)-1]
	s.stack = s.stack[:len(s.stack)-1]
	s.out = append(s.out, s.tok...)
	s.tok = s.tok[:0]
	if kind == 'k' {
		s.state = stKeyString
	} else {
		s.state = stString
	}
}

// structural handles a non-space byte outside strings and tokens.
func (s *Stream) structural(c byte) bool {
	switch s.state {
	case stValue, stValueOrEnd:
		if c == ']' && s.state == stValueOrEnd {
			s.closeContainer('[')
			return true
		}
		return s.beginValue(c)
	case stKeyOrEnd, stKey:
		if c == '}' && s.state == stKeyOrEnd {
			s.closeContainer('{')
			return true
		}
		if c != '"' {
			s.fail()
			return false
		}
		s.emitComma()
		s.out = append(s.out, '"')
		s.state = stKeyString
		return true
	case stColon:
		if c != ':' {
			s.fail()
			return false
		}
		s.out = append(s.out, ':')
		s.owed = true
		s.state = stValue
		return true
	case stAfter:
		top := s.stack[len(s.stack)-1]
		switch {
		case c == ',':
			s.pendingComma = true
			if top == '[' {
				s.state = stValue
			} else {
				s.state = stKey
			}
			return true
		case c == ']' && top == '[', c == '}' && top == '{':
			s.closeContainer(top)
			return true
		}
		s.fail()
		return false
	case stEnd:
		s.fail() // trailing data after the document
		return false
	}
	s.fail()
	return false
}

func (s *Stream) beginValue(c byte) bool {
	switch {
	case c == '{' || c == '[':
		if len(s.stack) >= maxDepth {
			s.fail()
			return false
		}
		s.emitComma()
		s.out = append(s.out, c)
		s.stack = append(s.stack, c)
		s.owed = false
		s.started = true
		if c == '{' {
			s.state = stKeyOrEnd
		} else {
			s.state = stValueOrEnd
		}
		return true
	case c == '"':
		s.emitComma()
		s.out = append(s.out, '"')
		s.started = true
		s.state = stString
		return true
	case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
		s.tok = append(s.tok[:0], c)
		s.started = true
		s.state = stToken
		return true
	}
	s.fail()
	return false
}

// endToken validates and emits a complete literal or number.
func (s *Stream) endToken() bool {
	if !validToken(s.tok) {
		s.tok = s.tok[:0]
		s.fail()
		return false
	}
	s.emitComma()
	s.out = append(s.out, s.tok...)
	s.tok = s.tok[:0]
	s.valueDone()
	return true
}

func (s *Stream) emitComma() {
	if s.pendingComma {
		s.out = append(s.out, ',')
		s.pendingComma = false
	}
}

func (s *Stream) closeContainer(open byte) {
	s.stack = s.stack[:len(s.stack)-1]
	if open == '[' {
		s.out = append(s.out, ']')
	} else {
		s.out = append(s.out, '}')
	}
	s.pendingComma = false
	s.valueDone()
}

func (s *Stream) valueDone() {
	s.owed = false
	if len(s.stack) == 0 {
		s.state = stEnd
	} else {
		s.state = stAfter
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isTokenByte(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' || c == 'E'
}

// validToken checks a literal or a number against RFC 8259's grammar.
func validToken(t []byte) bool {
	switch string(t) {
	case "true", "false", "null":
		return true
	}
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	if i >= len(t) {
		return false
	}
	if t[i] == '0' {
		i++
	} else if t[i] >= '1' && t[i] <= '9' {
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(t) && t[i] == '.' {
		i++
		d := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		d := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(t)
}
