package graphql

// This file has no Caddy import: reading a GraphQL-over-HTTP request
// (https://graphql.github.io/graphql-over-http/draft/), tested and
// benchmarked alone.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/graphql"
)

// Media types of the answer.
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	contentGraphQL       = mediaGraphQLResponse + "; charset=utf-8"
	contentJSON          = "application/json; charset=utf-8"
)

// refusal is an answer before execution: its HTTP status, the GraphQL
// error and headers to add.
type refusal struct {
	status int
	err    *graphql.Error
	header http.Header
}

func refuse(status int, code, msg string) *refusal {
	return &refusal{status: status, err: &graphql.Error{Code: code, Message: msg}}
}

// fromContract is the refusal of a contract error (quota, dialect, signer).
func fromContract(ce *contract.Error) *refusal {
	status := ce.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &refusal{status: status, header: ce.Header,
		err: &graphql.Error{Code: ce.Code, Message: ce.Message, Field: ce.Field, Context: ce.Context}}
}

// responseType is the answer's content type: application/graphql-response+json
// when Accept lists it (with a q above 0), else application/json.
func responseType(accept []string) string {
	for _, a := range accept {
		if !strings.Contains(a, mediaGraphQLResponse) {
			continue
		}
		for part := range strings.SplitSeq(a, ",") {
			mt, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(mt), mediaGraphQLResponse) {
				continue
			}
			if q, ok := qValue(params); ok && q == 0 {
				continue
			}
			return contentGraphQL
		}
	}
	return contentJSON
}

// qValue reads q= from a media range's parameters.
func qValue(params string) (float64, bool) {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return q, err == nil
		}
	}
	return 0, false
}

// decodeRequest reads the GraphQL request of r: POST with a JSON body
// {query, operationName, variables, extensions} of at most maxBody bytes, or
// GET with the query parameters query, operationName, variables (JSON) and
// extensions (JSON). get reports a GET (only queries may run).
func decodeRequest(w http.ResponseWriter, r *http.Request, maxBody int64) (req *graphql.Request, get bool, ref *refusal) {
	switch r.Method {
	case http.MethodPost:
		mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";") // parameters (charset) are JSON's own
		if !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return nil, false, refuse(http.StatusUnsupportedMediaType, contract.CodeBadRequest,
				"a GraphQL request is POSTed as application/json")
		}
		if r.ContentLength > maxBody {
			return nil, false, tooLarge(maxBody)
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, false, tooLarge(maxBody)
			}
			return nil, false, refuse(http.StatusBadRequest, contract.CodeBadRequest, "the request body could not be read")
		}
		req = new(graphql.Request)
		if err := json.Unmarshal(body, req); err != nil {
			return nil, false, refuse(http.StatusBadRequest, contract.CodeBadRequest,
				"the request body is not a GraphQL request (a JSON object with query, operationName, variables, extensions)")
		}
		return req, false, nil
	case http.MethodGet:
		if int64(len(r.URL.RawQuery)) > maxBody {
			return nil, true, refuse(http.StatusRequestURITooLong, contract.CodeBadRequest, "the query string is too long")
		}
		q := r.URL.Query()
		req = &graphql.Request{Query: q.Get("query"), OperationName: q.Get("operationName")}
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &req.Variables); err != nil {
				return nil, true, fieldRefusal("variables", "variables is not a JSON object")
			}
		}
		if v := q.Get("extensions"); v != "" {
			if err := json.Unmarshal([]byte(v), &req.Extensions); err != nil {
				return nil, true, fieldRefusal("extensions", "extensions is not a JSON object")
			}
		}
		return req, true, nil
	default:
		ref := refuse(http.StatusMethodNotAllowed, contract.CodeBadRequest, "GraphQL is served over GET and POST")
		ref.header = http.Header{"Allow": {"GET, POST"}}
		return nil, false, ref
	}
}

func fieldRefusal(field, msg string) *refusal {
	ref := refuse(http.StatusBadRequest, contract.CodeBadRequest, msg)
	ref.err.Field = field
	return ref
}

func tooLarge(limit int64) *refusal {
	ref := refuse(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, "the request body is too large")
	ref.err.Context = map[string]any{"limit_bytes": limit}
	return ref
}
