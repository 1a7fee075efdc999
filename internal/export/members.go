package export

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

var errBadObject = errors.New("export: a record is not a JSON object")

// eachMember calls fn with every member of rec, a JSON object that is
// already known to be valid (json.Decoder produced it), in order: its key
// unquoted and its value's raw text. It replaces a json.Decoder per record
// on the CSV path, which made CSV several times slower than NDJSON.
func eachMember(rec []byte, fn func(key string, raw []byte)) error {
	i := skipSpace(rec, 0)
	if i >= len(rec) || rec[i] != '{' {
		return errBadObject
	}
	i = skipSpace(rec, i+1)
	if i < len(rec) && rec[i] == '}' {
		return nil
	}
	for i < len(rec) {
		if rec[i] != '"' {
			return errBadObject
		}
		end, escaped := stringEnd(rec, i)
		if end < 0 {
			return errBadObject
		}
		key := string(rec[i+1 : end-1])
		if escaped || !utf8.ValidString(key) { // as encoding/json reads it: escapes, U+FFFD for bad bytes
			if err := json.Unmarshal(rec[i:end], &key); err != nil {
				return err
			}
		}
		i = skipSpace(rec, end)
		if i >= len(rec) || rec[i] != ':' {
			return errBadObject
		}
		i = skipSpace(rec, i+1)
		vend := valueEnd(rec, i)
		if vend < 0 {
			return errBadObject
		}
		fn(key, rec[i:vend])
		i = skipSpace(rec, vend)
		if i >= len(rec) {
			return errBadObject
		}
		switch rec[i] {
		case '}':
			return nil
		case ',':
			i = skipSpace(rec, i+1)
		default:
			return errBadObject
		}
	}
	return errBadObject
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the closing quote of the string at b[i]
// (-1 when unterminated) and whether it holds an escape.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return -1, escaped
}

// valueEnd is the index after the value starting at b[i], -1 when cut.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := stringEnd(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
