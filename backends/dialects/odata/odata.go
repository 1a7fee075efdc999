// Package odata is the OData v4 dialect. It owns that mapping and no state;
// it must not import Caddy or anything under caddymodules/ (its Caddy module
// is caddymodules/dialects/odata); of ours it imports only package dialects,
// contract and internal/envelope.
//
// Requests: a collection GET asking for a page gets `$top` (limit), `$skip`
// ((page-1)×limit, omitted for page 1); one without page is server-paged
// (`Prefer: odata.maxpagesize=<limit>`, no `$top`), so the service's
// `@odata.nextLink` carries the `$skiptoken` a cursor continues with (a
// service that ignores the preference is cut to limit and continued by
// `$skip`); a cursor's offset is `$skip`. Each gets `$count=true`,
// `$orderby` ("price desc,name asc") and `$filter` (comparisons `eq ne gt ge lt le` joined with `and`, text matches
// as `contains(field,'x')` / `startswith(field,'x')`, `in` as OData 4.01's
// `field in ('a','b')`, which a 4.0-only service refuses). String literals are
// single-quoted with quotes doubled (O'Brien → 'O”Brien'), numbers, booleans,
// null and dates (Edm.Date, 2026-01-31) are unquoted. An item is addressed
// by key: /Resource('id') for text ids, /Resource(42) for integer ids. Any
// other query parameter (in particular a raw `$filter`) is refused with 400:
// the edge's conventions are the only way in.
//
// Entity tags: an entity's `@odata.etag` (4.01: `@etag`) becomes the
// answer's ETag header when the service did not send one, so clients (and
// erp_merge) see the version the REST way, whatever the OData service puts
// where; the client's If-Match and If-None-Match pass to the service as
// they are (OData compares them with the same tags), and its 412 becomes
// the envelope's 409 CONFLICT as a REST backend's does.
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
	tr := &translator{page: q.Page, limit: q.Limit}
	switch pos := t.Cursor; {
	case pos == nil && q.PageSet:
		r.URL.RawQuery = BuildQuery(&q)
	case pos == nil:
		// the first page: server-driven paging, so the service's
		// @odata.nextLink (and its $skiptoken) says where the next one starts
		r.URL.RawQuery = serverPagedQuery(&q, "")
		r.Header.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(q.Limit))
		tr.server = true
	case pos.Kind == envelope.PosSkipToken:
		if pos.Value == "" {
			return nil, dialects.BadCursor(d.Backend)
		}
		r.URL.RawQuery = serverPagedQuery(&q, pos.Value)
		r.Header.Set("Prefer", "odata.maxpagesize="+strconv.Itoa(q.Limit))
		tr.server, tr.token, tr.page = true, true, 0
	case pos.Kind == envelope.PosOffset:
		off, ok := dialects.Offset(pos)
		if !ok {
			return nil, dialects.BadCursor(d.Backend)
		}
		q.From, q.FromSet = off, true
		r.URL.RawQuery = BuildQuery(&q)
		tr.page, tr.from, tr.fromSet = dialects.PageOf(off, q.Limit), off, true
	default:
		return nil, dialects.BadCursor(d.Backend)
	}
	return tr, nil
}

// serverPagedQuery is the system query of a server-paged request: no $top
// or $skip (the page size goes in `Prefer: odata.maxpagesize`), and the
// service's $skiptoken when continuing.
func serverPagedQuery(q *dialects.Query, skiptoken string) string {
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
	if skiptoken != "" {
		b = append(b, "&$skiptoken="...)
		b = append(b, queryEscape(skiptoken)...)
	}
	return string(b)
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
	from        int  // the offset of an offset cursor's page
	fromSet     bool // from holds it
	server      bool // server-driven paging (Prefer: odata.maxpagesize)
	token       bool // continued with a $skiptoken: the offset is unknown
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
		if body[0] == '{' && a.Header != nil && a.Header.Get("ETag") == "" {
			liftETag(body, a.Header)
		}
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
	nextLink := c.Next
	if nextLink == "" {
		nextLink = c.Next401
	}
	next := nextLink != ""
	offset := int64(tr.page-1) * int64(tr.limit)
	if tr.fromSet {
		offset = int64(tr.from)
	}
	total, ok := parseCount(c.Count)
	if !ok {
		total, ok = parseCount(c.Count401)
	}
	if tr.token { // the page's offset is the service's secret
		p := &envelope.Pagination{Page: 0, Limit: tr.limit, Total: total, HasNext: next}
		res := envelope.Result{Status: a.Status, Data: data, Pagination: p}
		res.Next = position(nextLink, -1) // none when the link has neither token nor $skip
		return res
	}
	if tr.server && n > tr.limit {
		// a service that ignored odata.maxpagesize: the first limit records,
		// and the next page by offset
		if data, err = firstN(data, tr.limit); err != nil {
			return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
		}
		n, nextLink, next = tr.limit, "", true
	}
	if !ok { // a service that ignores $count: what we know for sure
		total = offset + int64(n)
		if next {
			total++
		}
	}
	p := &envelope.Pagination{Page: tr.page, Limit: tr.limit, Total: total,
		HasNext: next || offset+int64(tr.limit) < total}
	if tr.server { // a short page of a server-paged listing goes on only with a nextLink
		p.HasNext = next || offset+int64(n) < total
	}
	res := envelope.Result{Status: a.Status, Data: data, Pagination: p}
	if p.HasNext {
		if tr.server {
			res.Next = position(nextLink, offset+int64(n))
		} else {
			res.Next = envelope.Position{Kind: envelope.PosOffset, Value: strconv.FormatInt(offset+int64(tr.limit), 10)}
		}
	}
	return res
}

// position is where the page after a server-paged one starts: the
// $skiptoken of the service's nextLink, its $skip, or else offset (none
// when offset < 0).
func position(nextLink string, offset int64) envelope.Position {
	if nextLink != "" {
		if u, err := url.Parse(nextLink); err == nil {
			q := u.Query()
			if tok := q.Get("$skiptoken"); tok != "" {
				return envelope.Position{Kind: envelope.PosSkipToken, Value: tok}
			}
			if sk := q.Get("$skip"); sk != "" && dialects.IsInteger(sk) {
				return envelope.Position{Kind: envelope.PosOffset, Value: sk}
			}
		}
	}
	if offset < 0 {
		return envelope.Position{}
	}
	return envelope.Position{Kind: envelope.PosOffset, Value: strconv.FormatInt(offset, 10)}
}

// firstN is the JSON array of arr's first n elements.
func firstN(arr []byte, n int) ([]byte, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(arr, &items); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(arr))
	out = append(out, '[')
	for i, it := range items[:min(n, len(items))] {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']'), nil
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

// liftETag sets the ETag header from an entity's @odata.etag (or 4.01's
// @etag) when it is a valid entity tag.
func liftETag(body []byte, h http.Header) {
	if !bytes.Contains(body, []byte("etag")) {
		return
	}
	var ann struct {
		ETag    string `json:"@odata.etag"`
		ETag401 string `json:"@etag"`
	}
	if json.Unmarshal(body, &ann) != nil {
		return
	}
	tag := ann.ETag
	if tag == "" {
		tag = ann.ETag401
	}
	if validETag(tag) {
		h.Set("ETag", tag)
	}
}

// validETag: one entity tag (RFC 9110 §8.8.3), strong or weak, of visible
// characters, so a header is never built from a malformed annotation.
func validETag(tag string) bool {
	t := strings.TrimPrefix(tag, "W/")
	if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' {
		return false
	}
	for i := 1; i < len(t)-1; i++ {
		if c := t[i]; c == '"' || c < 0x21 || c == 0x7f {
			return false
		}
	}
	return true
}
