package graphql

import (
	"encoding/json"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgate/erpgate/contract"
)

// pagePlan is how a connection's window [start, start+first) maps onto the
// backend's pages: one page of limit items when one holds the window,
// else two consecutive pages of first items.
type pagePlan struct {
	start, first int
	limit        int
	pages        []int // 1-based page numbers, consecutive
	skip         int   // items of the fetched pages before the window
	none         bool  // the filter matches nothing: no call
}

// planPages picks the smallest page size (≥ first, ≤ MaxFirst) with one
// page holding the window; two pages of first items otherwise.
func planPages(start, first int) *pagePlan {
	p := &pagePlan{start: start, first: first}
	for l := first; l <= MaxFirst; l++ {
		if start/l == (start+first-1)/l {
			p.limit, p.pages, p.skip = l, []int{start/l + 1}, start%l
			return p
		}
	}
	p.limit, p.pages, p.skip = first, []int{start/first + 1, start/first + 2}, start%first
	return p
}

// connectionCalls reads a root connection's arguments into its page plan
// and list query (without page and limit).
func (e *executor) connectionCalls(g *collected) (*pagePlan, url.Values, *Error) {
	f := g.fields[0]
	args := f.ArgumentMap(e.p.vars)
	first, err := firstOf(args, g.meta.defFirst)
	if err != nil {
		return nil, nil, err
	}
	start := 0
	if a, ok := args["after"].(string); ok {
		off, ok := decodeCursor(a)
		if !ok {
			return nil, nil, &Error{Message: "after is not a cursor this endpoint handed out", Code: contract.CodeBadRequest, Field: "after"}
		}
		start = off + 1
	}
	q, none, err := e.listQuery(f, args)
	if err != nil {
		return nil, nil, err
	}
	p := planPages(start, first)
	p.none = none
	return p, q, nil
}

// firstOf is the `first` argument checked against 1..MaxFirst.
func firstOf(args map[string]any, def int) (int, *Error) {
	v, ok := args["first"]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := toInt(v)
	if !ok || n < 1 || n > MaxFirst {
		return 0, &Error{Message: "first must be 1.." + strconv.Itoa(MaxFirst), Code: contract.CodeBadRequest, Field: "first"}
	}
	return n, nil
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		return int(n), n >= -maxOffset && n <= maxOffset
	case int:
		return n, true
	case float64:
		return int(n), n == float64(int(n)) && n >= -maxOffset && n <= maxOffset
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil && i >= -maxOffset && i <= maxOffset
	}
	return 0, false
}

// listQuery is a list call's filter and sort from a field's arguments.
// none: a filter on an empty list, which matches nothing.
func (e *executor) listQuery(f *ast.Field, args map[string]any) (url.Values, bool, *Error) {
	q := url.Values{}
	if s, ok := args["sort"].(string); ok && s != "" {
		q.Set("sort", s)
	}
	fv, ok := args["filter"].(map[string]any)
	if !ok {
		return q, false, nil
	}
	var input *ast.Definition
	if a := f.Definition.Arguments.ForName("filter"); a != nil {
		input = e.s.ast.Types[a.Type.Name()]
	}
	if input == nil {
		return q, false, nil
	}
	for _, fd := range input.Fields { // the input type's order: stable queries
		v, set := fv[fd.Name]
		if !set || v == nil {
			continue
		}
		if list, isList := v.([]any); isList {
			switch len(list) {
			case 0:
				return q, true, nil
			case 1:
				s, ok := filterScalar(list[0], false)
				if !ok {
					return nil, false, badFilter(fd.Name)
				}
				q.Add("filter", fd.Name+":eq:"+s)
			default:
				buf := make([]byte, 0, 64)
				buf = append(buf, fd.Name+":in:"...)
				for i, item := range list {
					s, ok := filterScalar(item, true)
					if !ok {
						return nil, false, badFilter(fd.Name)
					}
					if i > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, s...)
				}
				q.Add("filter", string(buf))
			}
			continue
		}
		s, ok := filterScalar(v, false)
		if !ok {
			return nil, false, badFilter(fd.Name)
		}
		q.Add("filter", fd.Name+":eq:"+s)
	}
	return q, false, nil
}

func badFilter(name string) *Error {
	return &Error{Message: "filter " + name + " takes scalars or lists of scalars", Code: contract.CodeBadRequest, Field: "filter." + name}
}

// filterScalar renders a filter value: strings bare for eq, JSON-quoted in
// an `in` list (so they may hold commas); numbers and booleans bare.
func filterScalar(v any, quote bool) (string, bool) {
	switch v := v.(type) {
	case string:
		if quote {
			return string(jsonString(nil, v)), true
		}
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int64, int, float64, json.Number:
		s, _ := idString(v)
		return s, true
	}
	return "", false
}

// completeRootConnection fills a root connection from its pages.
func (e *executor) completeRootConnection(it *rootItem, res []Result) {
	plan := it.page
	conn := &connPage{offset: plan.start, total: -1, hasPrev: plan.start > 0}
	if !plan.none {
		var items []json.RawMessage
		for i, r := range res {
			if r.Err != nil {
				e.fail(it.v, r.Err)
				return
			}
			var page []json.RawMessage
			if !isNull(r.Data) {
				var ok bool
				if !validJSON(r.Data) {
					e.fail(it.v, notA(it.g, "list"))
					return
				}
				if page, ok = splitArray(r.Data); !ok {
					e.fail(it.v, notA(it.g, "list"))
					return
				}
			}
			items = append(items, page...)
			if i == 0 {
				conn.total = r.Total
			}
		}
		end := min(plan.skip+plan.first, len(items))
		if plan.skip < end {
			conn.objs = e.decodeObjects(items[plan.skip:end])
		}
		conn.hasNext = len(items) > end || res[len(res)-1].HasNext
		if conn.total >= 0 {
			conn.hasNext = int64(plan.start+len(conn.objs)) < conn.total
		}
	} else {
		conn.total = 0
	}
	e.connection(it.v, it.g, it.g.meta.entity, conn)
}

// decodeObjects decodes a list's items; nil for one that is no object.
func (e *executor) decodeObjects(items []json.RawMessage) []jsonObject {
	objs := make([]jsonObject, len(items))
	for i, raw := range items {
		objs[i], _ = e.decodeObject(raw)
	}
	return objs
}

// connPage is one connection's window of items (a nil item: the backend's
// item was no object).
type connPage struct {
	objs             []jsonObject
	offset           int   // the first item's offset
	total            int64 // -1: unknown
	hasNext, hasPrev bool
}

// connection fills v as the entity's connection.
func (e *executor) connection(v *outNode, g *collected, entity string, page *connPage) {
	def := e.s.ast.Types[entity+"Connection"]
	e.objects++
	v.kind = vObject
	ent := e.s.ast.Types[entity]
	objs := page.objs
	for _, cg := range e.sub(g, def) {
		c := e.child(v, cg)
		switch cg.fields[0].Name {
		case "__typename":
			c.kind, c.raw = vRaw, jsonString(nil, def.Name)
		case "totalCount":
			if page.total >= 0 {
				c.kind, c.raw = vRaw, strconv.AppendInt(nil, page.total, 10)
			}
		case "pageInfo":
			e.pageInfo(c, cg, page)
		case "nodes":
			c.kind = vList
			for i, obj := range objs {
				n := e.node()
				*n = outNode{parent: c, index: i, typ: cg.def.Type.Elem, field: cg.fields[0]}
				c.kids = append(c.kids, n)
				if obj == nil {
					e.fail(n, notA(cg, entity))
					continue
				}
				e.object(n, ent, e.sub(cg, ent), obj)
			}
		case "edges":
			c.kind = vList
			edgeDef := e.s.ast.Types[entity+"Edge"]
			for i, obj := range objs {
				edge := e.node()
				*edge = outNode{parent: c, index: i, typ: cg.def.Type.Elem, field: cg.fields[0], kind: vObject}
				c.kids = append(c.kids, edge)
				e.objects++
				for _, eg := range e.sub(cg, edgeDef) {
					ec := e.child(edge, eg)
					switch eg.fields[0].Name {
					case "__typename":
						ec.kind, ec.raw = vRaw, jsonString(nil, edgeDef.Name)
					case "cursor":
						ec.kind, ec.raw = vRaw, jsonString(nil, cursor(page.offset+i))
					case "node":
						if obj == nil {
							e.fail(ec, notA(eg, entity))
							continue
						}
						e.object(ec, ent, e.sub(eg, ent), obj)
					}
				}
			}
		}
	}
}

// pageInfo fills a connection's PageInfo.
func (e *executor) pageInfo(v *outNode, g *collected, page *connPage) {
	def := e.s.ast.Types["PageInfo"]
	e.objects++
	v.kind = vObject
	for _, pg := range e.sub(g, def) {
		c := e.child(v, pg)
		switch pg.fields[0].Name {
		case "__typename":
			c.kind, c.raw = vRaw, jsonString(nil, def.Name)
		case "hasNextPage":
			c.kind, c.raw = vRaw, []byte(strconv.FormatBool(page.hasNext))
		case "hasPreviousPage":
			c.kind, c.raw = vRaw, []byte(strconv.FormatBool(page.hasPrev))
		case "startCursor":
			if len(page.objs) > 0 {
				c.kind, c.raw = vRaw, jsonString(nil, cursor(page.offset))
			}
		case "endCursor":
			if len(page.objs) > 0 {
				c.kind, c.raw = vRaw, jsonString(nil, cursor(page.offset+len(page.objs)-1))
			}
		}
	}
}

// cloneQuery copies a list query so each page's call has its own.
func cloneQuery(q url.Values) url.Values {
	out := make(url.Values, len(q)+2)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// jsonString appends s as a JSON string (control characters escaped,
// invalid UTF-8 replaced, U+2028/2029 escaped for embedding in scripts).
func jsonString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
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
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
