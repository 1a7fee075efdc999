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
	"strings"

	"github.com/erpgate/erpgate/contract"
)

// Decode reads r's body into v: a Content-Type of application/json (or
// none), at most maxBytes bytes, one JSON object with only the members v
// declares and nothing after it. An empty body decodes as {} when
// allowEmpty. Its refusals:
//
//   - 415 BAD_REQUEST: another Content-Type;
//   - 413 PAYLOAD_TOO_LARGE: more than maxBytes;
//   - 400 BAD_REQUEST: not one JSON object, or a member v does not declare
//     (then Field names it);
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
	return nil
}
