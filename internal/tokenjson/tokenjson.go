// Package tokenjson decodes the JSON of a token — a JWS protected header or
// a JWT claims set — strictly, so that every verifier in erpgate (the edge's
// erp_jwt, the auth service, a backend checking the edge assertion) reads
// one token one way. It has no Caddy import and no dependency but the
// standard library.
//
// # Why not encoding/json
//
// encoding/json is lenient where a token must not be: it matches member
// names case-insensitively (a `CID` member fills the `cid` field), keeps the
// last of duplicate members, replaces invalid UTF-8 and lone surrogates with
// U+FFFD, and nests 10,000 levels deep. A token that two parsers read
// differently is a token whose meaning an attacker chooses: a proxy that
// reads the first `cid` and a service that reads the last one disagree about
// the company (SECURITY.md, "Ambiguity": one parse, one answer, everywhere).
// RFC 7515 §5.2 and RFC 7519 §7.2 require the JOSE header and the claims set
// to be completely valid JSON objects in UTF-8 (RFC 8725 §3.2: UTF-8 only);
// RFC 7515 §4 and RFC 7519 §4 require unique names and let a parser either
// refuse duplicates or take the last one. We refuse every ambiguity.
//
// # What is refused
//
// A [Schema] is compiled once from a struct whose fields carry `json` tags
// (the names are the tokens' member names). Decode refuses, with an error
// wrapping the sentinel named:
//
//   - anything but one JSON object (RFC 8259) with nothing after it but
//     whitespace ([ErrSyntax]);
//   - two members of one object, at any depth, whose names are equal under
//     Unicode case folding: `cid` twice, or `cid` and `CID` ([ErrDuplicate]);
//   - a member whose name is not a field's name but equal to one under case
//     folding: `CID`, `Exp`, `ALG`, `ſub` (U+017F folds to s) — member names
//     are case-sensitive, and a variant of a known one is an attempt to be
//     read one way here and another way by encoding/json ([ErrCaseVariant]);
//   - invalid UTF-8 anywhere, and `\u` escapes that are not Unicode scalar
//     values (lone surrogates), in names and values alike ([ErrUTF8]);
//   - a value of the wrong JSON type for its field: a number where a string
//     belongs, a string where a number belongs, an object where an array
//     belongs, a fraction or an exponent where an integer belongs, and
//     `null` where a string, a number or a boolean belongs ([ErrType]);
//   - input longer than [MaxBytes], nesting deeper than [MaxDepth], or more
//     than [MaxMembers] members in one object or elements in one array
//     ([ErrLimit]).
//
// Members whose names are no field's (and no variant of one) are allowed, as
// RFC 7519 §4 asks (claims not understood are ignored), but they are still
// checked to the same rules, nested objects included.
//
// # Field types
//
//	string, bool, int64, float64    the JSON type; null refused
//	*string, *bool, *int64, *float64  the same, or null: nil (absent)
//	[]string                        an array of strings, or null: nil
//	Audience                        a string or an array of strings (RFC 7519 §4.1.3), or null: nil
//	Raw, json.RawMessage            any JSON value, checked, its bytes (aliasing the input; null is `null`)
//
// int64 takes integers only (no fraction, no exponent), as encoding/json.
// null is taken only where Go's own encoder writes it (a nil pointer or
// slice), and means the member is absent. On input that both accept,
// Decode and encoding/json.Unmarshal give the same result (fuzzed).
package tokenjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Bounds of what Decode reads. A compact token is bounded by its verifiers
// long before these (the edge's default is 8 KiB for the whole token); they
// are here so that the package is safe alone.
const (
	MaxBytes   = 16 << 10 // bytes of one document
	MaxDepth   = 16       // nested objects and arrays, the top-level object included
	MaxMembers = 128      // members of one object, elements of one array
)

// What Decode refuses; see the package documentation.
var (
	ErrSyntax      = errors.New("tokenjson: not one well-formed JSON object")
	ErrDuplicate   = errors.New("tokenjson: duplicate member name")
	ErrCaseVariant = errors.New("tokenjson: member name is a case variant of a known member")
	ErrUTF8        = errors.New("tokenjson: invalid UTF-8 or Unicode escape")
	ErrType        = errors.New("tokenjson: member value of the wrong type")
	ErrLimit       = errors.New("tokenjson: document too large or too deeply nested")
)

// Raw is any JSON value, checked to the package's rules, as it appears in
// the input (no copy: it aliases the decoded bytes).
type Raw []byte

// Audience is RFC 7519's `aud`: one string or an array of strings.
type Audience []string

// Contains reports whether a holds s.
func (a Audience) Contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

type kind uint8

const (
	kString kind = iota
	kBool
	kInt64
	kFloat64
	kStringPtr
	kBoolPtr
	kInt64Ptr
	kFloat64Ptr
	kStrings
	kAudience
	kRaw
)

type field struct {
	name string
	off  uintptr
	kind kind
}

// schema is the type-independent part of a Schema.
type schema struct {
	fields  []field
	byFirst [128]uint64 // folded first byte -> bit set of field indices
}

// Schema decodes token JSON into a T. Compile it once (a package variable);
// it is safe for concurrent use.
type Schema[T any] struct{ s schema }

// MustCompile is Compile for package variables: it panics on a T it can't
// decode into (a programming error, found by any test that loads the package).
func MustCompile[T any]() *Schema[T] {
	s, err := Compile[T]()
	if err != nil {
		panic(err)
	}
	return s
}

var (
	typRaw        = reflect.TypeFor[Raw]()
	typRawMessage = reflect.TypeFor[json.RawMessage]()
	typAudience   = reflect.TypeFor[Audience]()
	// A type with its own UnmarshalJSON would be read one way by
	// encoding/json and another way here: refused.
	typUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// Compile reads T's exported fields: each needs a `json:"name"` tag (ASCII,
// unique under case folding) or `json:"-"`, and a type from the package
// documentation's list (no type with its own UnmarshalJSON). Options after
// the name (",omitempty") are ignored.
func Compile[T any]() (*Schema[T], error) {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("tokenjson: %s is not a struct", t)
	}
	out := &Schema[T]{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Anonymous {
			return nil, fmt.Errorf("tokenjson: %s.%s: embedded fields are not supported", t, sf.Name)
		}
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			return nil, fmt.Errorf("tokenjson: %s.%s: no json tag", t, sf.Name)
		}
		for j := 0; j < len(tag); j++ {
			if tag[j] >= utf8.RuneSelf || tag[j] < 0x20 || tag[j] == '"' || tag[j] == '\\' {
				return nil, fmt.Errorf("tokenjson: %s.%s: member name %q must be printable ASCII", t, sf.Name, tag)
			}
		}
		for _, f := range out.s.fields {
			if strings.EqualFold(f.name, tag) {
				return nil, fmt.Errorf("tokenjson: %s: member names %q and %q differ only in case", t, f.name, tag)
			}
		}
		k, ok := kindOf(sf.Type)
		if !ok || (k != kRaw && reflect.PointerTo(sf.Type).Implements(typUnmarshaler)) {
			return nil, fmt.Errorf("tokenjson: %s.%s: type %s is not supported", t, sf.Name, sf.Type)
		}
		if len(out.s.fields) == 64 {
			return nil, fmt.Errorf("tokenjson: %s: more than 64 fields", t)
		}
		out.s.byFirst[lower(tag[0])] |= 1 << len(out.s.fields)
		out.s.fields = append(out.s.fields, field{name: tag, off: sf.Offset, kind: k})
	}
	return out, nil
}

func kindOf(t reflect.Type) (kind, bool) {
	switch t {
	case typRaw, typRawMessage:
		return kRaw, true
	case typAudience:
		return kAudience, true
	}
	switch t.Kind() {
	case reflect.String:
		return kString, true
	case reflect.Bool:
		return kBool, true
	case reflect.Int64:
		return kInt64, true
	case reflect.Float64:
		return kFloat64, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String && t.Elem().Name() == "string" && t.Elem().PkgPath() == "" {
			return kStrings, true
		}
	case reflect.Pointer:
		switch e := t.Elem(); {
		case e.PkgPath() != "":
			return 0, false // a named type: its own JSON methods would be ignored
		case e.Kind() == reflect.String:
			return kStringPtr, true
		case e.Kind() == reflect.Bool:
			return kBoolPtr, true
		case e.Kind() == reflect.Int64:
			return kInt64Ptr, true
		case e.Kind() == reflect.Float64:
			return kFloat64Ptr, true
		}
	}
	return 0, false
}

// Decode checks b and sets v's fields from the members present in b (fields
// of absent members keep their values, as with encoding/json). On error, v
// may be partly set and must be discarded.
func (s *Schema[T]) Decode(b []byte, v *T) error {
	return s.s.decode(b, unsafe.Pointer(v))
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// asciiFoldEqual is bytes.EqualFold for a and b known to be ASCII.
func asciiFoldEqual(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// match returns the index of the field named name, -1 for a member that is
// no field's; ErrCaseVariant for a name equal to a field's under Unicode
// case folding but not byte for byte.
func (s *schema) match(name []byte) (int, error) {
	if isASCII(name) {
		if len(name) == 0 {
			return -1, nil
		}
		for set := s.byFirst[lower(name[0])]; set != 0; set &= set - 1 {
			i := bits.TrailingZeros64(set)
			if f := s.fields[i].name; asciiFoldEqual(name, f) {
				if string(name) == f {
					return i, nil
				}
				return -1, ErrCaseVariant
			}
		}
		return -1, nil
	}
	// Some non-ASCII letters fold to ASCII ones (U+017F ſ to s, U+212A
	// Kelvin to k): compare the way encoding/json matches names.
	for _, f := range s.fields {
		if bytes.EqualFold(name, []byte(f.name)) {
			return -1, ErrCaseVariant
		}
	}
	return -1, nil
}

type decoder struct {
	b []byte
	i int
}

func (s *schema) decode(b []byte, base unsafe.Pointer) error {
	if len(b) > MaxBytes {
		return ErrLimit
	}
	d := decoder{b: b}
	d.ws()
	if d.i >= len(b) || b[d.i] != '{' {
		return ErrSyntax
	}
	d.i++
	var seen uint64
	var unknownArr [8][]byte // names of members that are no field's, for duplicates
	unknown := unknownArr[:0]
	d.ws()
	if d.i < len(b) && b[d.i] == '}' {
		d.i++
		return d.end()
	}
	for n := 1; ; n++ {
		if n > MaxMembers {
			return ErrLimit
		}
		name, err := d.name()
		if err != nil {
			return err
		}
		idx, err := s.match(name)
		if err != nil {
			return memberErr(err, name)
		}
		if idx >= 0 {
			if seen&(1<<idx) != 0 {
				return memberErr(ErrDuplicate, name)
			}
			seen |= 1 << idx
			if err := d.field(s.fields[idx], base); err != nil {
				return memberErr(err, name)
			}
		} else {
			for _, u := range unknown {
				if bytes.EqualFold(u, name) {
					return memberErr(ErrDuplicate, name)
				}
			}
			unknown = append(unknown, name)
			if err := d.skip(2); err != nil {
				return memberErr(err, name)
			}
		}
		if done, err := d.next('}'); err != nil || done {
			if err != nil {
				return err
			}
			return d.end()
		}
	}
}

// memberErr names the member in the error, quoted and cut short: the name
// is the sender's and may be anything.
func memberErr(err error, name []byte) error {
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Errorf("%w: member %q", err, name)
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end accepts only whitespace after the top-level object.
func (d *decoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return ErrSyntax
	}
	return nil
}

// next reads the separator after a member or element: ',' (more follow) or
// the closing byte (done).
func (d *decoder) next(closing byte) (done bool, err error) {
	d.ws()
	if d.i >= len(d.b) {
		return false, ErrSyntax
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		d.ws()
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, ErrSyntax
}

// name reads a member name and its colon; the name is unescaped (aliasing
// the input when it has no escapes).
func (d *decoder) name() ([]byte, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, ErrSyntax
	}
	s, e, esc, err := d.str()
	if err != nil {
		return nil, err
	}
	name := d.b[s:e]
	if esc {
		name = unescape(name)
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != ':' {
		return nil, ErrSyntax
	}
	d.i++
	d.ws()
	return name, nil
}

// str reads a string at d.i (a '"'): the bounds of its contents, and whether
// it has escapes. Control characters, bad escapes, invalid UTF-8 and lone
// surrogates are refused.
func (d *decoder) str() (start, end int, esc bool, err error) {
	b := d.b
	i := d.i + 1
	start = i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, ErrSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok {
					return 0, 0, false, ErrSyntax
				}
				i += 6
				switch {
				case 0xD800 <= r && r < 0xDC00: // a high surrogate: a low one must follow
					if i+1 >= len(b) || b[i] != '\\' || b[i+1] != 'u' {
						return 0, 0, false, ErrUTF8
					}
					r2, ok := hex4(b[i+2:])
					if !ok {
						return 0, 0, false, ErrSyntax
					}
					if r2 < 0xDC00 || r2 >= 0xE000 {
						return 0, 0, false, ErrUTF8
					}
					i += 6
				case 0xDC00 <= r && r < 0xE000:
					return 0, 0, false, ErrUTF8
				}
			default:
				return 0, 0, false, ErrSyntax
			}
		case c < 0x20:
			return 0, 0, false, ErrSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, 0, false, ErrUTF8
			}
			i += size
		}
	}
	return 0, 0, false, ErrSyntax
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the escapes of string contents str has checked.
func unescape(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(s[i+2:])
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(s[i+8:])
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			out = utf8.AppendRune(out, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return out
}

// stringValue reads a string value.
func (d *decoder) stringValue() (string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", d.mismatch()
	}
	s, e, esc, err := d.str()
	if err != nil {
		return "", err
	}
	if esc {
		return string(unescape(d.b[s:e])), nil
	}
	return string(d.b[s:e]), nil
}

// mismatch is the error for a value of the wrong type at d.i: ErrType, or
// ErrSyntax when it is no JSON value at all.
func (d *decoder) mismatch() error {
	if d.i >= len(d.b) {
		return ErrSyntax
	}
	switch c := d.b[d.i]; {
	case c == '"' || c == '{' || c == '[' || c == 't' || c == 'f' || c == 'n' || c == '-' || ('0' <= c && c <= '9'):
		return ErrType
	}
	return ErrSyntax
}

func (d *decoder) isNull() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

func (d *decoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// number reads a number (RFC 8259 §6) and whether it is an integer (no
// fraction, no exponent).
func (d *decoder) number() (start, end int, isInt bool, err error) {
	b, i := d.b, d.i
	start = i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false, ErrSyntax
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, 0, false, ErrSyntax
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, 0, false, ErrSyntax
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return start, i, isInt, nil
}

func (d *decoder) isNumberStart() bool {
	return d.i < len(d.b) && (d.b[d.i] == '-' || ('0' <= d.b[d.i] && d.b[d.i] <= '9'))
}

// int64Value reads an integer that fits an int64.
func (d *decoder) int64Value() (int64, error) {
	if !d.isNumberStart() {
		return 0, d.mismatch()
	}
	s, e, isInt, err := d.number()
	if err != nil {
		return 0, err
	}
	if !isInt {
		return 0, ErrType
	}
	lit := d.b[s:e]
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var u uint64
	for _, c := range lit {
		if u > (math.MaxUint64-9)/10 {
			return 0, ErrType
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), nil //nolint:gosec // -(1<<63) wraps to MinInt64 as meant
	case !neg && u <= math.MaxInt64:
		return int64(u), nil
	}
	return 0, ErrType
}

func (d *decoder) float64Value() (float64, error) {
	if !d.isNumberStart() {
		return 0, d.mismatch()
	}
	s, e, _, err := d.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(string(d.b[s:e]), 64)
	if err != nil {
		return 0, ErrType // out of range, as encoding/json refuses it
	}
	return f, nil
}

func (d *decoder) boolValue() (bool, error) {
	switch {
	case d.literal("true"):
		return true, nil
	case d.literal("false"):
		return false, nil
	}
	return false, d.mismatch()
}

// stringsValue reads an array of strings (d.i at '['); [] is an empty,
// non-nil slice, as encoding/json makes it.
func (d *decoder) stringsValue() ([]string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '[' {
		return nil, d.mismatch()
	}
	d.i++
	d.ws()
	out := []string{}
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return out, nil
	}
	for n := 1; ; n++ {
		if n > MaxMembers {
			return nil, ErrLimit
		}
		s, err := d.stringValue()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if done, err := d.next(']'); err != nil || done {
			return out, err
		}
	}
}

// field reads the value of a member into its field.
func (d *decoder) field(f field, base unsafe.Pointer) error {
	p := unsafe.Add(base, f.off) // Compile checked the field's type against f.kind
	switch f.kind {
	case kString:
		s, err := d.stringValue()
		*(*string)(p) = s
		return err
	case kBool:
		v, err := d.boolValue()
		*(*bool)(p) = v
		return err
	case kInt64:
		v, err := d.int64Value()
		*(*int64)(p) = v
		return err
	case kFloat64:
		v, err := d.float64Value()
		*(*float64)(p) = v
		return err
	case kStrings:
		if d.isNull() {
			*(*[]string)(p) = nil
			return nil
		}
		v, err := d.stringsValue()
		*(*[]string)(p) = v
		return err
	case kAudience:
		switch {
		case d.isNull():
			*(*[]string)(p) = nil
			return nil
		case d.i < len(d.b) && d.b[d.i] == '"':
			s, err := d.stringValue()
			*(*[]string)(p) = []string{s}
			return err
		}
		v, err := d.stringsValue()
		*(*[]string)(p) = v
		return err
	case kRaw:
		start := d.i
		err := d.skip(2)
		*(*[]byte)(p) = d.b[start:d.i:d.i]
		return err
	}
	// Pointers: null is absent.
	if d.isNull() {
		*(*unsafe.Pointer)(p) = nil
		return nil
	}
	switch f.kind {
	case kStringPtr:
		s, err := d.stringValue()
		*(**string)(p) = &s
		return err
	case kBoolPtr:
		v, err := d.boolValue()
		*(**bool)(p) = &v
		return err
	case kInt64Ptr:
		v, err := d.int64Value()
		*(**int64)(p) = &v
		return err
	case kFloat64Ptr:
		v, err := d.float64Value()
		*(**float64)(p) = &v
		return err
	}
	return ErrType
}

// skip checks the value at d.i, at nesting depth, and steps over it.
func (d *decoder) skip(depth int) error {
	if d.i >= len(d.b) {
		return ErrSyntax
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.skipObject(depth)
	case c == '[':
		return d.skipArray(depth)
	case c == '"':
		_, _, _, err := d.str()
		return err
	case c == 't' && d.literal("true"), c == 'f' && d.literal("false"), c == 'n' && d.literal("null"):
		return nil
	case c == '-' || ('0' <= c && c <= '9'):
		_, _, _, err := d.number()
		return err
	}
	return ErrSyntax
}

func (d *decoder) skipObject(depth int) error {
	if depth > MaxDepth {
		return ErrLimit
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	var namesArr [8][]byte
	names := namesArr[:0]
	for n := 1; ; n++ {
		if n > MaxMembers {
			return ErrLimit
		}
		name, err := d.name()
		if err != nil {
			return err
		}
		for _, o := range names {
			if bytes.EqualFold(o, name) {
				return memberErr(ErrDuplicate, name)
			}
		}
		names = append(names, name)
		if err := d.skip(depth + 1); err != nil {
			return err
		}
		if done, err := d.next('}'); err != nil || done {
			return err
		}
	}
}

func (d *decoder) skipArray(depth int) error {
	if depth > MaxDepth {
		return ErrLimit
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return nil
	}
	for n := 1; ; n++ {
		if n > MaxMembers {
			return ErrLimit
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
		if done, err := d.next(']'); err != nil || done {
			return err
		}
	}
}
