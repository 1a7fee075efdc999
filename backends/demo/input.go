package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one entry of a validation problem's errors list.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Validation error codes.
const (
	codeRequired         = "required"
	codeInvalidType      = "invalid_type"
	codeMustBePositive   = "must_be_positive"
	codeMustNotBeNeg     = "must_not_be_negative"
	codeInvalidEnum      = "invalid_enum"
	codeInvalidEmail     = "invalid_email"
	codeMustNotBeEmpty   = "must_not_be_empty"
	codeTooLong          = "too_long"
	codeNotFound         = "not_found"
	codeNotUnique        = "not_unique"
	codeInvalidDate      = "invalid_date"
	codeInvalidDecimal   = "invalid_decimal"
	codeTooManyDecimals  = "too_many_decimals"
	codeTooLarge         = "too_large"
	codeUnknownField     = "unknown_field"
	codeInvalidValue     = "invalid_value"
	maxTextLen           = 200
	maxCents             = int64(1e13) // 100 billion in major units: far beyond any demo value
	maxStock             = int64(1e9)
	decimalPatternSource = `^-?[0-9]+(\.[0-9]+)?$`
)

var decimalPattern = regexp.MustCompile(decimalPatternSource)

// mode says which fields a body must carry.
type mode int

const (
	modeCreate  mode = iota // POST: required fields required, defaults applied
	modeReplace             // PUT: like create, keeping id and server-assigned fields
	modePatch               // PATCH: only the fields present are read
)

// input is a decoded JSON object body. Its readers record a FieldError for
// every bad field instead of stopping at the first, so that a 422 lists them all.
type input struct {
	raw   map[string]json.RawMessage
	known map[string]bool
	errs  []FieldError
	mode  mode
}

func newInput(raw map[string]json.RawMessage, m mode) *input {
	return &input{raw: raw, known: make(map[string]bool, len(raw)), mode: m}
}

func (in *input) fail(field, code, format string, args ...any) {
	in.errs = append(in.errs, FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

// ignore marks server-assigned fields, which clients may send back unchanged.
func (in *input) ignore(names ...string) {
	for _, n := range names {
		in.known[n] = true
	}
}

// field returns the raw value of name. A missing field is an error unless the
// mode is PATCH or the field is optional; JSON null counts as missing.
func (in *input) field(name string, optional bool) (json.RawMessage, bool) {
	in.known[name] = true
	v, ok := in.raw[name]
	if ok && !bytes.Equal(v, []byte("null")) {
		return v, true
	}
	if in.mode != modePatch && !optional {
		in.fail(name, codeRequired, "%s is required", name)
	} else if ok && in.mode == modePatch {
		in.fail(name, codeInvalidType, "%s must not be null", name)
	}
	return nil, false
}

// finish reports every field nobody asked for, sorted, and returns all errors.
func (in *input) finish(prefix string) []FieldError {
	var unknown []string
	for k := range in.raw {
		if !in.known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		in.fail(prefix+k, codeUnknownField, "%s is not a known field", prefix+k)
	}
	return in.errs
}

// text reads a string field; nonEmpty rejects blank values.
func (in *input) text(name string, optional bool) (string, bool) {
	raw, ok := in.field(name, optional)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		in.fail(name, codeInvalidType, "%s must be a string", name)
		return "", false
	}
	return s, true
}

// name reads a required human-readable text: trimmed, non-empty, bounded.
func (in *input) name(field string) (string, bool) {
	s, ok := in.text(field, false)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		in.fail(field, codeMustNotBeEmpty, "%s must not be empty", field)
		return "", false
	case utf8.RuneCountInString(s) > maxTextLen:
		in.fail(field, codeTooLong, "%s must be at most %d characters", field, maxTextLen)
		return "", false
	}
	return s, true
}

func (in *input) email(field string) (string, bool) {
	s, ok := in.text(field, false)
	if !ok {
		return "", false
	}
	s = strings.TrimSpace(s)
	if !validEmail(s) {
		in.fail(field, codeInvalidEmail, "%s must be a valid email address", field)
		return "", false
	}
	return s, true
}

// validEmail accepts a bare addr-spec (no display name) with a dotted domain.
func validEmail(s string) bool {
	if s == "" || len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	return at > 0 && strings.Contains(s[at+1:], ".")
}

func (in *input) enum(field string, optional bool, allowed []string) (string, bool) {
	s, ok := in.text(field, optional)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		in.fail(field, codeInvalidEnum, "%s must be one of %s", field, strings.Join(allowed, ", "))
		return "", false
	}
	return s, true
}

func (in *input) date(field string, optional bool) (string, bool) {
	s, ok := in.text(field, optional)
	if !ok {
		return "", false
	}
	if _, err := time.Parse(dateLayout, s); err != nil {
		in.fail(field, codeInvalidDate, "%s must be a date in the form YYYY-MM-DD", field)
		return "", false
	}
	return s, true
}

// numberCents reads a JSON number (v1 money) as cents.
func (in *input) numberCents(field string, positive bool) (int64, bool) {
	raw, ok := in.field(field, false)
	if !ok {
		return 0, false
	}
	if !isJSONNumber(raw) {
		in.fail(field, codeInvalidType, "%s must be a number", field)
		return 0, false
	}
	return in.cents(field, string(raw), positive)
}

// decimalCents reads a decimal string (v2 money amount) as cents.
func (in *input) decimalCents(field, s string, positive bool) (int64, bool) {
	if !decimalPattern.MatchString(s) {
		in.fail(field, codeInvalidDecimal, "%s must be a decimal string such as \"12.50\"", field)
		return 0, false
	}
	return in.cents(field, s, positive)
}

// cents converts an exact decimal text to cents, enforcing sign and precision.
func (in *input) cents(field, s string, positive bool) (int64, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		in.fail(field, codeInvalidDecimal, "%s must be a decimal number", field)
		return 0, false
	}
	switch {
	case positive && r.Sign() <= 0:
		in.fail(field, codeMustBePositive, "%s must be greater than 0", field)
		return 0, false
	case !positive && r.Sign() < 0:
		in.fail(field, codeMustNotBeNeg, "%s must not be negative", field)
		return 0, false
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		in.fail(field, codeTooManyDecimals, "%s must have at most 2 decimal places", field)
		return 0, false
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > maxCents {
		in.fail(field, codeTooLarge, "%s is too large", field)
		return 0, false
	}
	return n.Int64(), true
}

// money reads a v2 money object {amount: "12.50", currency: "EUR"}; both
// members are required whenever the object is sent.
func (in *input) money(field string, positive bool) (cents int64, cur string, ok bool) {
	raw, present := in.field(field, false)
	if !present {
		return 0, "", false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		in.fail(field, codeInvalidType, "%s must be an object with amount and currency", field)
		return 0, "", false
	}
	sub := &input{raw: obj, known: map[string]bool{}, mode: modeCreate}
	amountOK, curOK := false, false
	if s, has := sub.text("amount", false); has {
		cents, amountOK = sub.decimalCents("amount", s, positive)
	}
	cur, curOK = sub.enum("currency", false, currencies)
	sub.finish("")
	for _, e := range sub.errs {
		e.Field = field + "." + e.Field
		e.Message = field + "." + e.Message
		in.errs = append(in.errs, e)
	}
	return cents, cur, amountOK && curOK
}

// integer reads a non-negative JSON integer no larger than max.
func (in *input) integer(field string, optional bool, max int64) (int64, bool) {
	raw, ok := in.field(field, optional)
	if !ok {
		return 0, false
	}
	if !isJSONNumber(raw) {
		in.fail(field, codeInvalidType, "%s must be an integer", field)
		return 0, false
	}
	r, ok := new(big.Rat).SetString(string(raw))
	if !ok || !r.IsInt() {
		in.fail(field, codeInvalidType, "%s must be an integer", field)
		return 0, false
	}
	if r.Sign() < 0 {
		in.fail(field, codeMustNotBeNeg, "%s must not be negative", field)
		return 0, false
	}
	if !r.Num().IsInt64() || r.Num().Int64() > max {
		in.fail(field, codeTooLarge, "%s must be at most %d", field, max)
		return 0, false
	}
	return r.Num().Int64(), true
}

func isJSONNumber(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}
