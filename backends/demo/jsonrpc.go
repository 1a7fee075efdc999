package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The JSON-RPC 2.0 product catalogue, in the style of Odoo's call_kw:
//
//	POST /jsonrpc
//	{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"product.product",
//	  "method":"search_read","args":[[["price",">",10]]],
//	  "kwargs":{"fields":["name","price"],"offset":0,"limit":5,"order":"price desc"}}}
//
// Models: product.product (the company's products, with the REST v1 fields).
// Methods: search_read (args [domain]; kwargs fields, offset, limit, order)
// and search_count (args [domain]). A domain is a list of [field, op, value]
// terms, implicitly and-ed, with the prefix operators "&", "|" and "!";
// operators = != > >= < <= like ilike =like =ilike in "not in" (like/ilike
// wrap the value in %…%; =like/=ilike take it as a pattern where \ escapes).
// Batches (a JSON array of requests) are answered with an array.
//
// Errors are JSON-RPC error objects, HTTP 200 like Odoo: -32700 parse error,
// -32600 invalid request, -32601 method not found, and Odoo's server error
// {"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessError"
// | "builtins.ValueError", "message", "debug": traceback}} for a missing or
// unknown company, an unknown model, method or field.

const jsonrpcPath = "/jsonrpc"

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

type rpcParams struct {
	Model  string            `json:"model"`
	Method string            `json:"method"`
	Args   []json.RawMessage `json:"args"`
	Kwargs struct {
		Fields []string        `json:"fields"`
		Offset int             `json:"offset"`
		Limit  int             `json:"limit"`
		Order  string          `json:"order"`
		Domain json.RawMessage `json:"domain"`
	} `json:"kwargs"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// odooError is Odoo's server error shape.
func odooError(name, msg string) *rpcError {
	return &rpcError{Code: 200, Message: "Odoo Server Error", Data: map[string]any{
		"name": name, "message": msg, "arguments": []string{msg}, "context": map[string]any{},
		"debug": "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1, in dispatch\n" + name + ": " + msg,
	}}
}

func (s *Server) serveJSONRPC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32600, Message: "Invalid Request"}})
		return
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32700, Message: "Parse error"}})
			return
		}
		if len(batch) == 0 {
			writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32600, Message: "Invalid Request"}})
			return
		}
		out := make([]rpcResponse, 0, len(batch))
		for _, raw := range batch {
			if resp, ok := s.rpcCall(r, raw); ok {
				out = append(out, resp)
			}
		}
		if len(out) == 0 { // all notifications
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeRPC(w, out)
		return
	}
	if !json.Valid(body) {
		writeRPC(w, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32700, Message: "Parse error"}})
		return
	}
	resp, ok := s.rpcCall(r, body)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeRPC(w, resp)
}

func writeRPC(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// rpcCall answers one request; ok is false for a notification (no id).
func (s *Server) rpcCall(r *http.Request, raw json.RawMessage) (rpcResponse, bool) {
	var req rpcRequest
	if err := json.Unmarshal(raw, &req); err != nil || req.JSONRPC != "2.0" || req.Method == "" {
		return rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32600, Message: "Invalid Request"}}, true
	}
	if len(req.ID) == 0 {
		return rpcResponse{}, false
	}
	resp := rpcResponse{JSONRPC: "2.0", ID: req.ID}
	if req.Method != "call" {
		resp.Error = &rpcError{Code: -32601, Message: "Method not found"}
		return resp, true
	}
	var p rpcParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		resp.Error = &rpcError{Code: -32602, Message: "Invalid params"}
		return resp, true
	}
	c, prob := s.company(r)
	if prob != nil {
		resp.Error = odooError("odoo.exceptions.AccessError", prob.Detail)
		return resp, true
	}
	if p.Model != "product.product" {
		resp.Error = odooError("builtins.KeyError", "unknown model "+strconv.Quote(p.Model))
		return resp, true
	}
	s.mu.RLock()
	recs := make([]record, 0, len(c.products))
	for _, x := range c.products {
		recs = append(recs, productRecord(x))
	}
	s.mu.RUnlock()
	domain := p.Kwargs.Domain
	if len(p.Args) > 0 {
		domain = p.Args[0]
	}
	pred, err := parseDomain(domain, recs)
	if err != nil {
		resp.Error = odooError("builtins.ValueError", err.Error())
		return resp, true
	}
	kept := recs[:0]
	for _, rec := range recs {
		ok, err := pred(rec)
		if err != nil {
			resp.Error = odooError("builtins.ValueError", err.Error())
			return resp, true
		}
		if ok {
			kept = append(kept, rec)
		}
	}
	switch p.Method {
	case "search_count":
		resp.Result = len(kept)
	case "search_read":
		var keys []sortKey
		if p.Kwargs.Order != "" {
			for part := range strings.SplitSeq(p.Kwargs.Order, ",") {
				f := strings.Fields(part)
				if len(f) == 0 || len(f) > 2 || !hasField(recs, f[0]) || (len(f) == 2 && !strings.EqualFold(f[1], "asc") && !strings.EqualFold(f[1], "desc")) {
					resp.Error = odooError("builtins.ValueError", "Invalid \"order\" specified ("+p.Kwargs.Order+")")
					return resp, true
				}
				keys = append(keys, sortKey{field: f[0], desc: len(f) == 2 && strings.EqualFold(f[1], "desc")})
			}
		}
		sortRecords(kept, keys)
		limit := p.Kwargs.Limit
		if limit <= 0 {
			limit = len(kept)
		}
		pg := page(kept, max(0, p.Kwargs.Offset), limit)
		out := make([]record, 0, len(pg))
		for _, rec := range pg {
			if len(p.Kwargs.Fields) == 0 {
				out = append(out, rec)
				continue
			}
			sel := record{"id": rec["id"]}
			for _, f := range p.Kwargs.Fields {
				v, ok := rec[f]
				if !ok {
					resp.Error = odooError("builtins.ValueError", "Invalid field "+strconv.Quote(f)+" on model 'product.product'")
					return resp, true
				}
				sel[f] = v
			}
			out = append(out, sel)
		}
		resp.Result = out
	default:
		resp.Error = odooError("builtins.AttributeError", "The method '"+p.Method+"' does not exist on the model 'product.product'")
	}
	return resp, true
}

func hasField(recs []record, f string) bool {
	if len(recs) == 0 {
		return f == "id"
	}
	_, ok := recs[0][f]
	return ok
}

// parseDomain parses an Odoo domain into a predicate.
func parseDomain(raw json.RawMessage, recs []record) (predicate, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return func(record) (bool, error) { return true, nil }, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("the domain must be a list")
	}
	// prefix (Polish) notation: parse from the end with a stack
	var stack []predicate
	for i := len(items) - 1; i >= 0; i-- {
		var op string
		if json.Unmarshal(items[i], &op) == nil {
			switch op {
			case "&", "|":
				if len(stack) < 2 {
					return nil, errors.New("domain operator " + op + " needs two terms")
				}
				a, b := stack[len(stack)-1], stack[len(stack)-2]
				stack = stack[:len(stack)-2]
				and := op == "&"
				stack = append(stack, func(r record) (bool, error) {
					x, err := a(r)
					if err != nil || x != and {
						return x, err
					}
					return b(r)
				})
			case "!":
				if len(stack) < 1 {
					return nil, errors.New("domain operator ! needs a term")
				}
				a := stack[len(stack)-1]
				stack[len(stack)-1] = func(r record) (bool, error) { x, err := a(r); return !x, err }
			default:
				return nil, errors.New("invalid domain operator " + strconv.Quote(op))
			}
			continue
		}
		term, err := parseTerm(items[i], recs)
		if err != nil {
			return nil, err
		}
		stack = append(stack, term)
	}
	// implicit & between the remaining terms
	return func(r record) (bool, error) {
		for i := len(stack) - 1; i >= 0; i-- {
			ok, err := stack[i](r)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}, nil
}

func parseTerm(raw json.RawMessage, recs []record) (predicate, error) {
	var t []json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil || len(t) != 3 {
		return nil, errors.New("invalid domain term " + string(raw))
	}
	var field, op string
	if json.Unmarshal(t[0], &field) != nil || json.Unmarshal(t[1], &op) != nil {
		return nil, errors.New("invalid domain term " + string(raw))
	}
	if !hasField(recs, field) {
		return nil, errors.New("Invalid field " + strconv.Quote(field) + " on model 'product.product'")
	}
	var val any
	if err := json.Unmarshal(t[2], &val); err != nil {
		return nil, errors.New("invalid domain value " + string(t[2]))
	}
	switch op {
	case "=", "!=", ">", ">=", "<", "<=":
		return func(r record) (bool, error) {
			v := r[field]
			if val == nil || v == nil {
				eq := val == nil && v == nil
				return (op == "=" && eq) || (op == "!=" && !eq), nil
			}
			c, err := compareValues(v, val)
			if err != nil {
				return false, errors.New(field + ": " + err.Error())
			}
			switch op {
			case "=":
				return c == 0, nil
			case "!=":
				return c != 0, nil
			case ">":
				return c > 0, nil
			case ">=":
				return c >= 0, nil
			case "<":
				return c < 0, nil
			}
			return c <= 0, nil
		}, nil
	case "like", "ilike", "=like", "=ilike":
		pat, ok := val.(string)
		if !ok {
			return nil, errors.New(op + " needs a text value")
		}
		if !strings.HasPrefix(op, "=") {
			pat = "%" + pat + "%"
		}
		fold := strings.HasSuffix(op, "ilike")
		return func(r record) (bool, error) {
			s, ok := r[field].(string)
			if !ok {
				return false, errors.New(op + " needs a text field; " + field + " is not one")
			}
			return likeMatch(pat, s, fold), nil
		}, nil
	case "in", "not in":
		list, ok := val.([]any)
		if !ok {
			return nil, errors.New(op + " needs a list")
		}
		return func(r record) (bool, error) {
			found := false
			for _, x := range list {
				if c, err := compareValues(r[field], x); err == nil && c == 0 {
					found = true
					break
				}
			}
			return found == (op == "in"), nil
		}, nil
	}
	return nil, errors.New("invalid domain operator " + strconv.Quote(op))
}
