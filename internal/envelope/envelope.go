// Package envelope writes erpgate's response envelope (DESIGN.md, "Envelope").
// It has no Caddy import: the edge's erp_envelope handler and the auth service
// both write through it, so every answer has the same shape. It owns that
// shape and no state; of ours it imports only contract, and it must not
// import Caddy or anything under caddymodules/ (backends/dialects uses it).
//
//	{"success":true,"data":…,"meta":{"timestamp":…,"request_id":…},"pagination":{…}}
//	{"success":false,"data":null,"meta":{…},"errors":[{"code":…,"message":…}]}
package envelope

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Meta is the envelope's meta object. Empty strings are omitted.
type Meta struct {
	Timestamp  time.Time
	RequestID  string
	CompanyID  string
	UserID     string
	APIVersion string
	// Merged is set on the answer to a PATCH that erp_merge re-applied on
	// the current version (`Prefer: merge=auto`): `"merged":true`.
	Merged bool
}

// Pagination is present only for collections.
type Pagination struct {
	Page    int   `json:"page"`
	Limit   int   `json:"limit"`
	Total   int64 `json:"total"`
	HasNext bool  `json:"has_next"`
	// NextCursor is the opaque cursor of the next page (`?cursor=`), set
	// by the edge when there is one; omitted when empty.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Error is one entry of the envelope's errors array.
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
	Context map[string]any `json:"context,omitempty"`
}

// ContentType of every envelope.
const ContentType = "application/json; charset=utf-8"

// AppendSuccess appends a success envelope around data, which must be valid
// JSON (nil means null).
func AppendSuccess(dst, data []byte, m *Meta, p *Pagination) []byte {
	dst = append(dst, `{"success":true,"data":`...)
	if len(data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	dst = append(dst, `,"meta":`...)
	dst = AppendMeta(dst, m)
	if p != nil {
		dst = AppendPagination(dst, p)
	}
	return append(dst, '}')
}

// AppendFailure appends an error envelope.
func AppendFailure(dst []byte, m *Meta, errs ...Error) []byte {
	dst = append(dst, `{"success":false,"data":null,"meta":`...)
	dst = AppendMeta(dst, m)
	dst = append(dst, `,"errors":`...)
	dst = AppendErrors(dst, errs)
	return append(dst, '}')
}

// AppendErrors appends a JSON array of errors.
func AppendErrors(dst []byte, errs []Error) []byte {
	dst = append(dst, '[')
	for i := range errs {
		if i > 0 {
			dst = append(dst, ',')
		}
		e := &errs[i]
		dst = append(dst, `{"code":`...)
		dst = AppendString(dst, e.Code)
		dst = append(dst, `,"message":`...)
		dst = AppendString(dst, e.Message)
		if e.Field != "" {
			dst = append(dst, `,"field":`...)
			dst = AppendString(dst, e.Field)
		}
		if len(e.Context) > 0 {
			if b, err := json.Marshal(e.Context); err == nil {
				dst = append(dst, `,"context":`...)
				dst = append(dst, b...)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// AppendMeta appends the meta object.
func AppendMeta(dst []byte, m *Meta) []byte {
	dst = append(dst, `{"timestamp":"`...)
	ts := m.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	dst = ts.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","request_id":`...)
	dst = AppendString(dst, m.RequestID)
	if m.CompanyID != "" {
		dst = append(dst, `,"company_id":`...)
		dst = AppendString(dst, m.CompanyID)
	}
	if m.UserID != "" {
		dst = append(dst, `,"user_id":`...)
		dst = AppendString(dst, m.UserID)
	}
	if m.APIVersion != "" {
		dst = append(dst, `,"api_version":`...)
		dst = AppendString(dst, m.APIVersion)
	}
	if m.Merged {
		dst = append(dst, `,"merged":true`...)
	}
	return append(dst, '}')
}

// AppendPagination appends `,"pagination":{…}`.
func AppendPagination(dst []byte, p *Pagination) []byte {
	dst = append(dst, `,"pagination":{"page":`...)
	dst = strconv.AppendInt(dst, int64(p.Page), 10)
	dst = append(dst, `,"limit":`...)
	dst = strconv.AppendInt(dst, int64(p.Limit), 10)
	dst = append(dst, `,"total":`...)
	dst = strconv.AppendInt(dst, p.Total, 10)
	dst = append(dst, `,"has_next":`...)
	dst = strconv.AppendBool(dst, p.HasNext)
	if p.NextCursor != "" {
		dst = append(dst, `,"next_cursor":`...)
		dst = AppendString(dst, p.NextCursor)
	}
	return append(dst, '}')
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// WriteFailure writes an error envelope as the whole response.
func WriteFailure(w http.ResponseWriter, status int, m *Meta, errs ...Error) {
	body := AppendFailure(make([]byte, 0, 256), m, errs...)
	writeBody(w, status, body)
}

// WriteSuccess writes a success envelope around v (marshalled with encoding/json).
func WriteSuccess(w http.ResponseWriter, status int, v any, m *Meta, p *Pagination) {
	data, err := json.Marshal(v)
	if err != nil {
		WriteFailure(w, http.StatusInternalServerError, m, Error{Code: "INTERNAL", Message: "internal error"})
		return
	}
	writeBody(w, status, AppendSuccess(make([]byte, 0, len(data)+192), data, m, p))
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
