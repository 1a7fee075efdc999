package graphql

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The executor reads backends' JSON without reflection: each Result.Data
// is checked once with json.Valid where it enters (validJSON), then split
// into members and items by the scanners below, which rely on that check.
// What they return are slices of the checked document, so a scalar copied
// into the response is valid JSON.

// validJSON says whether a backend's data is one valid JSON value.
func validJSON(raw json.RawMessage) bool {
	return len(raw) > 0 && json.Valid(raw)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// splitArray returns a checked JSON array's items.
func splitArray(b []byte) ([]json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var out []json.RawMessage
	for i = skipSpace(b, i+1); i < len(b) && b[i] != ']'; {
		end := skipValue(b, i)
		out = append(out, b[i:end:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, true
}

// jsonMember is an object's member: its name (unquoted) and raw value.
type jsonMember struct {
	name []byte
	raw  json.RawMessage
}

// jsonObject is an object's members in order. Objects are small: a linear
// lookup beats a map's allocations.
type jsonObject []jsonMember

// get is the member's value (the last one of a name, as encoding/json
// does), nil when absent.
func (o jsonObject) get(name string) json.RawMessage {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].name) == name {
			return o[i].raw
		}
	}
	return nil
}

// splitObject appends a checked JSON object's members to dst, returning
// dst and the object (a slice of it, never nil).
func splitObject(dst []jsonMember, b []byte) ([]jsonMember, jsonObject, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, nil, false
	}
	start := len(dst)
	for i = skipSpace(b, i+1); i < len(b) && b[i] == '"'; {
		end := skipString(b, i)
		name, ok := unquote(b[i:end])
		if !ok {
			return dst[:start], nil, false
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return dst[:start], nil, false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		dst = append(dst, jsonMember{name: name, raw: b[i:vend:vend]})
		i = skipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	obj := jsonObject(dst[start:len(dst):len(dst)])
	if obj == nil {
		obj = jsonObject{}
	}
	return dst, obj, true
}

// unquote reads a JSON string (invalid UTF-8 replaced, as encoding/json
// does); without escapes, it is a slice of b.
func unquote(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	if bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return b[1 : len(b)-1 : len(b)-1], true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}
