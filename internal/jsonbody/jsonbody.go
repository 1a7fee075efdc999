// Package jsonbody reads a request's JSON body the one way erpgate's own
// APIs read them (the auth service's and the edge's in-process handlers):
// JSON only, bounded, one object, no unknown member. Its refusals are
// *contract.Error values ready for the envelope. It owns no state and
// imports only contract and the standard library.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/erpgate/erpgate/contract"
)

// Decode reads r's body into v: a Content-Type of application/json (or
// none), at most maxBytes bytes, one JSON object with only the members v
// declares and nothing after it. An empty body decodes as {} when
// allowEmpty. Its refusals:
//
//   - 415 BAD_REQUEST: another Content-Type;
//   - 413 PAYLOAD_TOO_LARGE: more than maxBytes;
//   - 400 BAD_REQUEST: not one JSON object, or a member v does not declare,
//     declares only under another case (`URL` for `url`), or that comes
//     twice (then Field names it);
//   - 422 VALIDATION_FAILED with Field: a member of the wrong JSON type.
func Decode(w http.ResponseWriter, r *http.Request, v any, maxBytes int64, allowEmpty bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return contract.NewError(http.StatusUnsupportedMediaType, contract.CodeBadRequest, "the body must be JSON (Content-Type: application/json)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return contract.NewError(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, "request body too large")
		}
		return contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 && allowEmpty {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			e := contract.NewError(http.StatusUnprocessableEntity, contract.CodeValidationFailed, "wrong type")
			e.Field = ute.Field
			return e
		}
		e := contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be a JSON object with the documented fields")
		// encoding/json names an unknown member only in its message:
		// `json: unknown field "name"`.
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			if name, ok = strings.CutSuffix(name, `"`); ok && len(name) <= 64 {
				e.Field = name
				e.Message = "unknown field"
			}
		}
		return e
	}
	if dec.More() {
		return contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be a single JSON object")
	}
	return members(body, v)
}

// members refuses what encoding/json lets through at the top level of the
// object: a member twice (it keeps the last), and a member whose name is
// a field's only under case folding (`URL` for `url`: it fills the field),
// so that the body means one thing to every reader (SECURITY.md,
// "Ambiguity"). v's fields are read from its json tags.
func members(body []byte, v any) error {
	names := fieldNames(reflect.TypeOf(v))
	if names == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil // decoded already: not an object only when empty
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be a JSON object with the documented fields")
		}
		name, _ := t.(string)
		field := name
		if len(field) > 64 {
			field = ""
		}
		if seen[name] {
			e := contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "duplicate member")
			e.Field = field
			return e
		}
		seen[name] = true
		if !names[name] {
			e := contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "unknown field")
			e.Field = field
			return e
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, "the body must be a JSON object with the documented fields")
		}
	}
	return nil
}

var fieldNamesCache sync.Map // reflect.Type → map[string]bool

// fieldNames is the set of JSON member names of the struct t points to
// (embedded structs' included), or nil when t is not a pointer to a struct.
func fieldNames(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	if m, ok := fieldNamesCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	var add func(st reflect.Type)
	add = func(st reflect.Type) {
		for i := 0; i < st.NumField(); i++ {
			f := st.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					add(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			m[name] = true
		}
	}
	add(t.Elem())
	fieldNamesCache.Store(t, m)
	return m
}
