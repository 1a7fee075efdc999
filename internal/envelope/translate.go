package envelope

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/contract"
)

// Answer is a backend's complete (buffered) answer.
type Answer struct {
	Request *http.Request
	Status  int
	Header  http.Header
	Body    []byte
}

// Result is what a Translator makes of an Answer. Data must be valid JSON or nil.
type Result struct {
	Status     int
	Data       []byte
	Pagination *Pagination
	Errors     []Error
	// Next is the position of the next page in the backend's own terms,
	// set by a dialect's translator when Pagination.HasNext; the edge seals
	// it into Pagination.NextCursor. Zero: no cursor can be offered.
	Next Position
}

// Kinds of Position.
const (
	// PosKeyset: Value is the JSON text of the last record's key (a
	// string's quotes included); the next page holds the records after it.
	PosKeyset = "keyset"
	// PosSkipToken: Value is the backend's own continuation token (OData
	// $skiptoken from @odata.nextLink).
	PosSkipToken = "skiptoken"
	// PosOffset: Value is the decimal number of records before the next page.
	PosOffset = "offset"
)

// Position is where a page starts, in the backend's own terms.
type Position struct {
	Kind  string
	Value string
}

// Translator maps a backend's answer into the envelope's parts. Each backend
// dialect implements one; REST is the default.
type Translator interface {
	Translate(a *Answer) Result
}

// TranslatorFunc adapts a function to Translator.
type TranslatorFunc func(a *Answer) Result

// Translate calls f.
func (f TranslatorFunc) Translate(a *Answer) Result { return f(a) }

// REST is the default translator: JSON is kept as data; collections are
// recognised by an `X-Total-Count` header (with `X-Page`/`X-Per-Page`, the
// request's `page`/`limit`, and a `Link: rel="next"`); errors are read from
// RFC 9457 problem details or the common {"error":{code,message}} /
// {"code","message"} shapes.
var REST Translator = TranslatorFunc(restTranslate)

// InvalidUpstream is the error for a backend answer that is not valid JSON
// although labelled as JSON.
var InvalidUpstream = Error{Code: contract.CodeUpstreamUnavailable, Message: "the backend sent an invalid answer"}

func restTranslate(a *Answer) Result {
	body := bytes.TrimSpace(a.Body)
	if a.Status < 400 {
		if len(body) == 0 {
			return Result{Status: a.Status}
		}
		if !ValidJSON(body) {
			return Result{Status: http.StatusBadGateway, Errors: []Error{InvalidUpstream}}
		}
		res := Result{Status: a.Status, Data: body}
		if body[0] == '[' {
			res.Pagination = PaginationFromHeaders(a.Request, a.Header)
		}
		return res
	}
	return Result{Status: a.Status, Errors: ErrorsFromBody(a.Status, body)}
}

// PaginationFromHeaders reads REST pagination headers; nil when the answer
// carries no total.
func PaginationFromHeaders(r *http.Request, h http.Header) *Pagination {
	totalStr := h.Get("X-Total-Count")
	if totalStr == "" {
		return nil
	}
	total, err := strconv.ParseInt(totalStr, 10, 64)
	if err != nil || total < 0 {
		return nil
	}
	p := &Pagination{Total: total, Page: 1, Limit: 50}
	page, okPage := positiveInt(h.Get("X-Page"))
	limit, okLimit := positiveInt(h.Get("X-Per-Page"))
	if (!okPage || !okLimit) && r != nil && r.URL.RawQuery != "" {
		// the backend did not say: the request's own page and limit
		if v, ok := positiveInt(queryValue(r.URL.RawQuery, "page")); ok {
			p.Page = v
		}
		if v, ok := positiveInt(queryValue(r.URL.RawQuery, "limit")); ok {
			p.Limit = v
		}
	}
	if okPage {
		p.Page = page
	}
	if okLimit {
		p.Limit = limit
	}
	p.HasNext = int64(p.Page)*int64(p.Limit) < p.Total || linkHasNext(h.Values("Link"))
	return p
}

// positiveInt parses a decimal above zero; "" and junk are (0, false)
// without the error strconv would allocate.
func positiveInt(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n > 0
}

// queryValue is url.Values.Get of a raw query without building the map:
// the first value of key (keys and values are unescaped as ParseQuery does;
// malformed pairs are skipped as ParseQuery skips them).
func queryValue(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v
	}
	return ""
}

// LinkHasNext reports whether RFC 8288 Link header values hold a
// rel="next" link.
func LinkHasNext(links []string) bool { return linkHasNext(links) }

func linkHasNext(links []string) bool {
	for _, l := range links {
		for part := range strings.SplitSeq(l, ",") {
			if strings.Contains(part, `rel="next"`) || strings.Contains(part, "rel=next") {
				return true
			}
		}
	}
	return false
}

// upstreamError covers RFC 9457 problem details and the common error shapes.
type upstreamError struct {
	Title   string          `json:"title"`
	Detail  string          `json:"detail"`
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
	Error   json.RawMessage `json:"error"`
	Errors  []struct {
		Field   string `json:"field"`
		Pointer string `json:"pointer"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

// ErrorsFromBody reads a backend's error answer; it always returns at least
// one error, with a code from the status when the body says none.
func ErrorsFromBody(status int, body []byte) []Error {
	code := contract.CodeForStatus(status)
	msg := http.StatusText(status)
	var ue upstreamError
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &ue) == nil {
		if len(ue.Error) > 0 && ue.Error[0] == '{' {
			var inner upstreamError
			if json.Unmarshal(ue.Error, &inner) == nil {
				ue.Code, ue.Message = inner.Code, inner.Message
			}
		} else if len(ue.Error) > 0 && ue.Error[0] == '"' {
			var s string
			_ = json.Unmarshal(ue.Error, &s)
			ue.Message = s
		}
		if c := stringCode(ue.Code); c != "" {
			code = c
		}
		switch {
		case ue.Detail != "":
			msg = ue.Detail
		case ue.Message != "":
			msg = ue.Message
		case ue.Title != "":
			msg = ue.Title
		}
		if len(ue.Errors) > 0 {
			out := make([]Error, 0, len(ue.Errors))
			for _, fe := range ue.Errors {
				e := Error{Code: code, Message: fe.Message, Field: fe.Field}
				if e.Message == "" {
					e.Message = fe.Detail
				}
				if e.Message == "" {
					e.Message = msg
				}
				if e.Field == "" && fe.Pointer != "" {
					e.Field = strings.TrimPrefix(strings.ReplaceAll(fe.Pointer, "/", "."), ".")
				}
				if fe.Code != "" {
					e.Context = map[string]any{"reason": fe.Code}
				}
				out = append(out, e)
			}
			return out
		}
	}
	return []Error{{Code: code, Message: msg}}
}

// stringCode keeps an upstream code that looks like a code (UPPER_SNAKE).
func stringCode(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil || s == "" || len(s) > 64 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && c != '_' && (c < '0' || c > '9') {
			return ""
		}
	}
	return s
}
