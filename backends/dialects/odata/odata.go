// Package odata is the OData v4 dialect. It owns that mapping and no state;
// it must not import Caddy or anything under caddymodules/ (its Caddy module
// is caddymodules/dialects/odata); of ours it imports only package dialects,
// contract and internal/envelope.
//
// Requests: a collection GET gets `$top` (limit), `$skip` ((page-1)×limit,
// omitted for page 1), `$count=true`, `$orderby` ("price desc,name asc") and
// `$filter` (comparisons `eq ne gt ge lt le` joined with `and`, text matches
// as `contains(field,'x')` / `startswith(field,'x')`, `in` as OData 4.01's
// `field in ('a','b')`, which a 4.0-only service refuses). String literals are
// single-quoted with quotes doubled (O'Brien → 'O”Brien'), numbers, booleans,
// null and dates (Edm.Date, 2026-01-31) are unquoted. An item is addressed
// by key: /Resource('id') for text ids, /Resource(42) for integer ids. Any
// other query parameter (in particular a raw `$filter`) is refused with 400:
// the edge's conventions are the only way in.
//
// Answers: a collection's `value` is the data; `@odata.count` (or 4.01's
// `@count`) is the total, and `@odata.nextLink` (`@nextLink`) or the count
// says whether there is a next page. Annotations (`@odata.context`,
// `@odata.etag`, `Name@odata.type`, …) are removed from the data. The OData
// error object {"error":{"code","message","target","details":[…]}} becomes
// the envelope's errors; `innererror` (traces, internals) is never shown.
package odata

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Dialect is the OData v4 dialect of one backend.
type Dialect struct {
	// Backend names the backend in messages.
	Backend string
}

// Rewrite maps path and query to OData's.
func (d *Dialect) Rewrite(r *http.Request, t *dialects.Target) (envelope.Translator, error) {
	if t.ID != "" {
		segs := make([]string, 0, 1+len(t.Sub))
		segs = append(segs, KeySegment(t.Resource, t.ID))
		segs = append(segs, t.Sub...)
		dialects.SetPath(r.URL, t.BasePath, segs...)
		if r.URL.RawQuery != "" {
			return nil, dialects.BadQuery("", "an item of the "+d.Backend+" backend (OData) takes no query parameters")
		}
		return &translator{item: true}, nil
	}
	dialects.SetPath(r.URL, t.JoinPath())
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		// writes to the collection (POST) pass through; they take no query
		if r.URL.RawQuery != "" {
			return nil, dialects.BadQuery("", "a "+r.Method+" to the "+d.Backend+" backend (OData) takes no query parameters")
		}
		return &translator{item: true}, nil
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, dialects.BadQuery("", "the query string is malformed")
	}
	q, err := dialects.ParseQuery(v)
	if err != nil {
		return nil, err
	}
	if len(q.Other) > 0 {
		return nil, dialects.BadQuery(q.Other[0], "the "+d.Backend+" backend (OData) takes only page, limit, sort and filter; "+strconv.Quote(q.Other[0])+" is not one")
	}
	r.URL.RawQuery = BuildQuery(&q)
	return &translator{page: q.Page, limit: q.Limit}, nil
}

// KeySegment is Resource('id') or Resource(42), without the leading slash.
func KeySegment(resource, id string) string {
	name := strings.TrimPrefix(resource, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if dialects.IsInteger(id) {
		return name + "(" + id + ")"
	}
	return name + "(" + Quote(id) + ")"
}

// BuildQuery is the OData system query of q, encoded.
func BuildQuery(q *dialects.Query) string {
	b := make([]byte, 0, 96)
	b = append(b, "$count=true"...)
	if len(q.Filters) > 0 {
		b = append(b, "&$filter="...)
		b = append(b, queryEscape(Filter(q.Filters))...)
	}
	if len(q.Sort) > 0 {
		b = append(b, "&$orderby="...)
		b = append(b, queryEscape(OrderBy(q.Sort))...)
	}
	if off := q.Offset(); off > 0 {
		b = append(b, "&$skip="...)
		b = strconv.AppendInt(b, int64(off), 10)
	}
	b = append(b, "&$top="...)
	b = strconv.AppendInt(b, int64(q.Limit), 10)
	return string(b)
}

// queryEscape escapes a query value with spaces as %20 (RFC 3986), not '+':
// OData services disagree on whether '+' means a space.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// OrderBy is the $orderby expression of the sort keys.
func OrderBy(keys []dialects.SortKey) string {
	return dialects.JoinSort(keys, ",")
}

var opNames = map[dialects.Op]string{
	dialects.OpEq: "eq", dialects.OpNe: "ne", dialects.OpGt: "gt",
	dialects.OpGe: "ge", dialects.OpLt: "lt", dialects.OpLe: "le",
}

// Filter is the $filter expression of the filters (all must hold).
func Filter(fs []dialects.Filter) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" and ")
		}
		switch f.Op {
		case dialects.OpContains, dialects.OpStartsWith:
			b.WriteString(f.Op.String())
			b.WriteByte('(')
			b.WriteString(f.Field)
			b.WriteByte(',')
			b.WriteString(Quote(f.Value.Text))
			b.WriteByte(')')
		case dialects.OpIn:
			b.WriteString(f.Field)
			b.WriteString(" in (")
			for j, v := range f.Values {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(Literal(v))
			}
			b.WriteByte(')')
		default:
			b.WriteString(f.Field)
			b.WriteByte(' ')
			b.WriteString(opNames[f.Op])
			b.WriteByte(' ')
			b.WriteString(Literal(f.Value))
		}
	}
	return b.String()
}

// Literal is v as an OData literal.
func Literal(v dialects.Value) string {
	switch v.Kind {
	case dialects.Number, dialects.Bool, dialects.Date:
		return v.Text
	case dialects.Null:
		return "null"
	}
	return Quote(v.Text)
}

// Quote is an OData string literal: single quotes, a quote inside doubled
// (OData ABNF: SQUOTE-in-string = SQUOTE SQUOTE).
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// translator reads one OData answer. page and limit are the client's.
type translator struct {
	item        bool
	page, limit int
}

type collection struct {
	Value      json.RawMessage `json:"value"`
	Count      json.RawMessage `json:"@odata.count"`
	Count401   json.RawMessage `json:"@count"`
	Next       string          `json:"@odata.nextLink"`
	Next401    string          `json:"@nextLink"`
	Context    string          `json:"@odata.context"`
	Context401 string          `json:"@context"`
}

func (tr *translator) Translate(a *envelope.Answer) envelope.Result {
	body := bytes.TrimSpace(a.Body)
	if a.Status >= 400 {
		return envelope.Result{Status: a.Status, Errors: Errors(a.Status, body)}
	}
	if len(body) == 0 {
		return envelope.Result{Status: a.Status}
	}
	if !envelope.ValidJSON(body) {
		return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
	}
	if tr.item || body[0] != '{' {
		data, err := dialects.StripAnnotations(body)
		if err != nil {
			return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
		}
		return envelope.Result{Status: a.Status, Data: data}
	}
	var c collection
	if err := json.Unmarshal(body, &c); err != nil || len(c.Value) == 0 || c.Value[0] != '[' {
		return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{{
			Code: contract.CodeUpstreamUnavailable, Message: "the backend's OData answer has no value array"}}}
	}
	data, err := dialects.StripAnnotations(c.Value)
	if err != nil {
		return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
	}
	n := countItems(c.Value)
	next := c.Next != "" || c.Next401 != ""
	offset := int64(tr.page-1) * int64(tr.limit)
	total, ok := parseCount(c.Count)
	if !ok {
		total, ok = parseCount(c.Count401)
	}
	if !ok { // a service that ignores $count: what we know for sure
		total = offset + int64(n)
		if next {
			total++
		}
	}
	p := &envelope.Pagination{Page: tr.page, Limit: tr.limit, Total: total,
		HasNext: next || int64(tr.page)*int64(tr.limit) < total}
	return envelope.Result{Status: a.Status, Data: data, Pagination: p}
}

// parseCount reads a count, also in IEEE754Compatible form ("120").
func parseCount(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(string(raw), `"`)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// countItems counts the elements of a valid JSON array.
func countItems(arr []byte) int {
	depth, n, inStr, esc, empty := 0, 0, false, false, true
	for _, c := range arr {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			if depth == 1 {
				empty = false
			}
		case '[', '{':
			if depth == 1 {
				empty = false
			}
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				n++
			}
		case ' ', '\t', '\r', '\n':
		default:
			if depth == 1 {
				empty = false
			}
		}
	}
	if empty {
		return 0
	}
	return n + 1
}

// odataError is the OData error object (JSON format §21). message is a
// string in v4; v2/v3 services send {"lang","value"}, read as well.
type odataError struct {
	Error *struct {
		Code    string          `json:"code"`
		Message json.RawMessage `json:"message"`
		Target  string          `json:"target"`
		Details []struct {
			Code    string          `json:"code"`
			Message json.RawMessage `json:"message"`
			Target  string          `json:"target"`
		} `json:"details"`
	} `json:"error"`
}

// Errors reads an OData error answer; other shapes fall back to the REST
// reading (problem details and the common shapes).
func Errors(status int, body []byte) []envelope.Error {
	var oe odataError
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &oe) != nil || oe.Error == nil {
		return envelope.ErrorsFromBody(status, body)
	}
	msg := message(oe.Error.Message)
	if msg == "" {
		msg = contract.MessageForStatus(status)
	}
	code, ctx := dialects.UpstreamCode(oe.Error.Code, status)
	out := make([]envelope.Error, 0, 1+len(oe.Error.Details))
	out = append(out, envelope.Error{Code: code, Message: msg, Field: oe.Error.Target, Context: ctx})
	for _, d := range oe.Error.Details {
		m := message(d.Message)
		if m == "" {
			continue
		}
		c, cctx := dialects.UpstreamCode(d.Code, status)
		out = append(out, envelope.Error{Code: c, Message: m, Field: d.Target, Context: cctx})
	}
	return out
}

func message(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if raw[0] == '"' {
		_ = json.Unmarshal(raw, &s)
		return s
	}
	var v struct {
		Value string `json:"value"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.Value
}

var _ dialects.Dialect = (*Dialect)(nil)
