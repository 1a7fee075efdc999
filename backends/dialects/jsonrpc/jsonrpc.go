// Package jsonrpc is the JSON-RPC 2.0 dialect, in the style of Odoo's
// `call_kw`: every read becomes a POST of a JSON-RPC request whose params
// name the model, the method and its arguments. It owns that mapping and no
// state; it must not import Caddy or anything under caddymodules/ (its Caddy
// module is caddymodules/dialects/jsonrpc); of ours it imports only package
// dialects, contract and internal/envelope.
//
// A collection GET becomes a JSON-RPC batch (JSON-RPC 2.0 §6) of two calls,
// so the page and its total come in one round trip:
//
//	[{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"product.product","method":"search_read",
//	   "args":[DOMAIN],"kwargs":{"fields":[…],"offset":10,"limit":10,"order":"price desc, id asc"}}},
//	 {"jsonrpc":"2.0","method":"call","id":2,"params":{"model":"product.product","method":"search_count",
//	   "args":[DOMAIN],"kwargs":{}}}]
//
// DOMAIN is an Odoo domain, a list of [field, operator, value] terms that
// all must hold: eq ne gt ge lt le become = != > >= < <=; contains and
// startswith become `=like` with the value's own `%`, `_` and `\` escaped
// (so they match literally) and `%` added around / after it; in becomes
// [field, "in", [v1, v2, …]]. Values keep their JSON type; dates are
// strings, as in Odoo.
//
// An item GET /{backend}/{id} is one search_read with [["id","=",id]]
// (integer ids as numbers) and limit 1; no record is 404 NOT_FOUND.
//
// Answers: the search_read result is the data, the search_count result the
// total. A JSON-RPC error object {"code","message","data"} becomes the
// envelope's error: -32602 (invalid params) is 400; Odoo's server errors
// (code 200, data.name an exception class) map by class — AccessError 403,
// MissingError 404, ValidationError 422, UserError and ValueError 400; the
// rest is 502. data.debug (Odoo's traceback) is never shown.
//
// A cursor continues by search_read's offset. Only GET is mapped; other
// methods are 405. The POST carries an
// Idempotency-Key (the request id), since it only reads.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Dialect is the JSON-RPC dialect of one backend.
type Dialect struct {
	// Backend names the backend in messages.
	Backend string
	// Model is the model every call names, e.g. "product.product".
	Model string
	// Fields limits the fields search_read returns; empty means all.
	Fields []string
}

// Rewrite turns the GET into a JSON-RPC POST to the version's URL.
func (d *Dialect) Rewrite(r *http.Request, t *dialects.Target) (envelope.Translator, error) {
	if r.Method != http.MethodGet {
		return nil, dialects.MethodNotAllowed(d.Backend, "JSON-RPC", "GET")
	}
	if len(t.Sub) > 0 {
		return nil, dialects.NotFound("no such resource in the " + d.Backend + " backend")
	}
	var body []byte
	tr := &translator{}
	if t.ID != "" {
		if r.URL.RawQuery != "" {
			return nil, dialects.BadQuery("", "an item of the "+d.Backend+" backend takes no query parameters")
		}
		idVal := dialects.Value{Kind: dialects.String, Text: t.ID}
		if dialects.IsInteger(t.ID) {
			idVal.Kind = dialects.Number
		}
		q := dialects.Query{Page: 1, Limit: 1, Filters: []dialects.Filter{{Field: "id", Op: dialects.OpEq, Value: idVal}}}
		body = d.appendCall(make([]byte, 0, 256), 1, "search_read", &q, true)
		tr.item = true
	} else {
		v, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, dialects.BadQuery("", "the query string is malformed")
		}
		q, err := dialects.ParseQuery(v)
		if err != nil {
			return nil, err
		}
		if len(q.Other) > 0 {
			return nil, dialects.BadQuery(q.Other[0], "the "+d.Backend+" backend (JSON-RPC) takes only page, limit, sort and filter; "+strconv.Quote(q.Other[0])+" is not one")
		}
		if pos := t.Cursor; pos != nil { // JSON-RPC's search_read takes an offset
			off, ok := dialects.Offset(pos)
			if !ok {
				return nil, dialects.BadCursor(d.Backend)
			}
			q.From, q.FromSet = off, true
		}
		body = d.AppendBatch(make([]byte, 0, 384), &q)
		tr.page, tr.limit, tr.offset = q.Page, q.Limit, q.Offset()
		if q.FromSet {
			tr.page = dialects.PageOf(q.From, q.Limit)
		}
		tr.list = true
	}
	dialects.SetPath(r.URL, t.BasePath)
	r.URL.RawQuery = ""
	r.Method = http.MethodPost
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	h := r.Header
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Encoding")
	h.Del("Transfer-Encoding")
	// The POST only reads. Saying so (draft-ietf-httpapi-idempotency-key-header)
	// lets the proxy's transport replay it when a kept-alive connection turns
	// out to be closed by the backend (as on a backend restart or a config
	// reload), exactly as it replays GETs; without it such a read fails 502.
	if id := h.Get("X-Request-Id"); id != "" && len(id) <= 64 {
		h.Set("Idempotency-Key", `"`+id+`"`)
	} else {
		h.Set("Idempotency-Key", `"search_read"`)
	}
	return tr, nil
}

// AppendBatch appends the search_read + search_count batch of q.
func (d *Dialect) AppendBatch(b []byte, q *dialects.Query) []byte {
	b = append(b, '[')
	b = d.appendCall(b, 1, "search_read", q, true)
	b = append(b, ',')
	b = d.appendCall(b, 2, "search_count", q, false)
	return append(b, ']')
}

func (d *Dialect) appendCall(b []byte, id int, method string, q *dialects.Query, read bool) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":"call","id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"params":{"model":`...)
	b = envelope.AppendString(b, d.Model)
	b = append(b, `,"method":`...)
	b = envelope.AppendString(b, method)
	b = append(b, `,"args":[`...)
	b = AppendDomain(b, q.Filters)
	b = append(b, `],"kwargs":{`...)
	if read {
		if len(d.Fields) > 0 {
			b = append(b, `"fields":[`...)
			for i, f := range d.Fields {
				if i > 0 {
					b = append(b, ',')
				}
				b = envelope.AppendString(b, f)
			}
			b = append(b, "],"...)
		}
		b = append(b, `"offset":`...)
		b = strconv.AppendInt(b, int64(q.Offset()), 10)
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, int64(q.Limit), 10)
		if len(q.Sort) > 0 {
			b = append(b, `,"order":`...)
			b = envelope.AppendString(b, Order(q.Sort))
		}
	}
	return append(b, "}}}"...)
}

// Order is Odoo's order spec of the sort keys: "price desc, name asc".
func Order(keys []dialects.SortKey) string {
	return dialects.JoinSort(keys, ", ")
}

var domainOps = map[dialects.Op]string{
	dialects.OpEq: "=", dialects.OpNe: "!=", dialects.OpGt: ">",
	dialects.OpGe: ">=", dialects.OpLt: "<", dialects.OpLe: "<=",
}

// AppendDomain appends the Odoo domain (a JSON array of terms, implicitly
// and-ed) of the filters.
func AppendDomain(b []byte, fs []dialects.Filter) []byte {
	b = append(b, '[')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = envelope.AppendString(b, f.Field)
		b = append(b, ',')
		switch f.Op {
		case dialects.OpContains:
			b = append(b, `"=like",`...)
			b = envelope.AppendString(b, "%"+EscapeLike(f.Value.Text)+"%")
		case dialects.OpStartsWith:
			b = append(b, `"=like",`...)
			b = envelope.AppendString(b, EscapeLike(f.Value.Text)+"%")
		case dialects.OpIn:
			b = append(b, `"in",[`...)
			for j, v := range f.Values {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, v)
			}
			b = append(b, ']')
		default:
			b = envelope.AppendString(b, domainOps[f.Op])
			b = append(b, ',')
			b = appendValue(b, f.Value)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

func appendValue(b []byte, v dialects.Value) []byte {
	switch v.Kind {
	case dialects.Number, dialects.Bool:
		return append(b, v.Text...)
	case dialects.Null:
		return append(b, "null"...)
	}
	return envelope.AppendString(b, v.Text)
}

// EscapeLike escapes the LIKE wildcards % and _ and the escape character \
// (PostgreSQL's default), so the text matches literally.
func EscapeLike(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%', '_', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// translator reads one JSON-RPC answer.
type translator struct {
	item        bool
	list        bool // a collection read: the next page's offset is offered
	page, limit int
	offset      int
}

// Response is one JSON-RPC 2.0 response object.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *RPCError       `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// RPCError is the JSON-RPC error object; Data is Odoo's {name, message, debug, …}
// when the server is Odoo.
type RPCError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func badAnswer(msg string) envelope.Result {
	return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{{Code: contract.CodeUpstreamUnavailable, Message: msg}}}
}

func (tr *translator) Translate(a *envelope.Answer) envelope.Result {
	body := bytes.TrimSpace(a.Body)
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		if a.Status >= 400 {
			return envelope.Result{Status: a.Status, Errors: envelope.ErrorsFromBody(a.Status, body)}
		}
		return badAnswer("the backend's answer is not a JSON-RPC response")
	}
	var read, count *Response
	if body[0] == '[' {
		var batch []Response
		if err := json.Unmarshal(body, &batch); err != nil {
			return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
		}
		for i := range batch {
			switch idOf(batch[i].ID) {
			case 1:
				read = &batch[i]
			case 2:
				count = &batch[i]
			}
		}
		if read == nil && len(batch) == 1 && batch[0].Error != nil { // an error for the whole batch
			read = &batch[0]
		}
	} else {
		var one Response
		if err := json.Unmarshal(body, &one); err != nil {
			if a.Status >= 400 {
				return envelope.Result{Status: a.Status, Errors: envelope.ErrorsFromBody(a.Status, body)}
			}
			return envelope.Result{Status: http.StatusBadGateway, Errors: []envelope.Error{envelope.InvalidUpstream}}
		}
		read = &one
	}
	for _, r := range []*Response{read, count} {
		if r != nil && r.Error != nil {
			status, e := ErrorOf(r.Error)
			return envelope.Result{Status: status, Errors: []envelope.Error{e}}
		}
	}
	if read == nil || len(read.Result) == 0 || read.Result[0] != '[' {
		if a.Status >= 400 {
			return envelope.Result{Status: a.Status, Errors: envelope.ErrorsFromBody(a.Status, body)}
		}
		return badAnswer("the backend's JSON-RPC answer has no search_read result")
	}
	if tr.item {
		first, ok := firstElement(read.Result)
		if !ok {
			return envelope.Result{Status: http.StatusNotFound, Errors: []envelope.Error{{
				Code: contract.CodeNotFound, Message: "no such record"}}}
		}
		return envelope.Result{Status: http.StatusOK, Data: first}
	}
	if count == nil || count.Result == nil {
		return badAnswer("the backend's JSON-RPC answer has no search_count result")
	}
	total, err := strconv.ParseInt(string(bytes.TrimSpace(count.Result)), 10, 64)
	if err != nil || total < 0 {
		return badAnswer("the backend's search_count result is not a count")
	}
	end := int64(tr.offset) + int64(tr.limit)
	if !tr.list { // a translator made outside Rewrite knows only the page
		end = int64(tr.page) * int64(tr.limit)
	}
	p := &envelope.Pagination{Page: tr.page, Limit: tr.limit, Total: total, HasNext: end < total}
	res := envelope.Result{Status: http.StatusOK, Data: read.Result, Pagination: p}
	if p.HasNext {
		res.Next = envelope.Position{Kind: envelope.PosOffset, Value: strconv.FormatInt(end, 10)}
	}
	return res
}

func idOf(raw json.RawMessage) int {
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func firstElement(arr json.RawMessage) (json.RawMessage, bool) {
	var items []json.RawMessage
	if json.Unmarshal(arr, &items) != nil || len(items) == 0 {
		return nil, false
	}
	return items[0], true
}

// odooData is the data member of Odoo's server errors.
type odooData struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// ErrorOf maps a JSON-RPC error object to a status and an envelope error.
func ErrorOf(e *RPCError) (int, envelope.Error) {
	ctx := map[string]any{"rpc_code": e.Code}
	msg := e.Message
	status := http.StatusBadGateway
	switch {
	case e.Code == -32602:
		status = http.StatusBadRequest
	case e.Code == 200 || e.Code == 100: // Odoo: server error / session expired
		var d odooData
		if len(e.Data) > 0 && e.Data[0] == '{' && json.Unmarshal(e.Data, &d) == nil && d.Name != "" {
			ctx["exception"] = d.Name
			if d.Message != "" {
				msg = d.Message
			}
			if e.Code == 200 {
				status = odooStatus(d.Name)
			}
		}
	}
	if msg == "" {
		msg = contract.MessageForStatus(status)
	}
	return status, envelope.Error{Code: contract.CodeForStatus(status), Message: msg, Context: ctx}
}

func odooStatus(name string) int {
	cls := name[strings.LastIndexByte(name, '.')+1:]
	switch cls {
	case "AccessError", "AccessDenied":
		return http.StatusForbidden
	case "MissingError":
		return http.StatusNotFound
	case "ValidationError":
		return http.StatusUnprocessableEntity
	case "UserError", "ValueError", "KeyError":
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

var _ dialects.Dialect = (*Dialect)(nil)
