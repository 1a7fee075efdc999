// Package rest is the REST dialect: requests pass through with their path
// mapped onto the backend's base URL; `filter=field:eq:value` becomes the
// backend's own `field=value` and `filter=field:in:v1,v2` the repeated
// parameter `field=v1&field=v2`, for the fields the backend is known to
// filter on. A REST backend behind this dialect must therefore read repeated
// parameters as "any of" (the demo ERP does); one that kept only the first
// or the last would answer a different query. Answers are read by
// envelope.REST (JSON as data, `X-Total-Count`,
// `X-Page`/`X-Per-Page` and `Link: rel="next"` as pagination, RFC 9457
// problem details as errors). A cursor continues by keyset when the backend
// declares a key (Dialect.Keyset) and the listing is in its order, else by
// page.
//
// It owns that mapping and no state; it must not import Caddy or anything
// under caddymodules/ (its Caddy module is caddymodules/dialects/rest); of
// ours it imports only package dialects and internal/envelope.
package rest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Dialect is the REST dialect of one backend.
type Dialect struct {
	// Backend names the backend in messages.
	Backend string
	// FilterFields are the fields the backend filters on by exact match
	// (`field=value`, repeated for any of several values). A filter on any
	// other field, or with any operator but eq and in, is refused with 400:
	// a REST backend commonly ignores query parameters it does not know,
	// which would silently return more.
	FilterFields []string
	// Keyset is the field a listing can continue after (a unique key the
	// backend sorts on, e.g. "id"): a cursor of a listing in the key's order
	// (no sort, or sort=<Keyset>) is sent as `sort=<Keyset>&<KeysetParam>=<last
	// key>` and the backend answers the records after that key, with a
	// `Link: rel="next"` when there are more. The backend's default order
	// must be the key's. Empty: cursors are offsets (page/limit).
	Keyset string
	// KeysetParam is the query parameter that takes the last key seen.
	// Default: "after".
	KeysetParam string
}

// Rewrite maps the path; the query passes through except `filter` (and a
// cursor's position, which becomes the backend's keyset or page).
func (d *Dialect) Rewrite(r *http.Request, t *dialects.Target) (envelope.Translator, error) {
	segs := t.Sub
	if t.ID != "" {
		segs = make([]string, 0, 1+len(t.Sub))
		segs = append(segs, t.ID)
		segs = append(segs, t.Sub...)
	}
	from := t.JoinPath()
	tr := envelope.Translator(envelope.REST)
	if to := t.Public; to != "" && to != from {
		tr = linkRewriter{from: from, to: to}
	}
	dialects.SetPath(r.URL, from, segs...)
	list := t.ID == "" && len(t.Sub) == 0 && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	if r.URL.RawQuery == "" && t.Cursor == nil {
		if list {
			return &pages{tr: tr, keyset: d.Keyset}, nil
		}
		return tr, nil
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, dialects.BadQuery("", "the query string is malformed")
	}
	q, err := dialects.ParseQuery(v)
	if err != nil {
		return nil, err
	}
	changed := len(q.Filters) > 0
	v.Del("filter")
	for _, f := range q.Filters {
		if f.Op != dialects.OpEq && f.Op != dialects.OpIn {
			return nil, dialects.BadQuery("filter", "the "+d.Backend+" backend (REST) can only filter with eq and in, not "+f.Op.String())
		}
		if !slices.Contains(d.FilterFields, f.Field) {
			msg := "the " + d.Backend + " backend (REST) cannot filter on " + strconv.Quote(f.Field)
			if len(d.FilterFields) == 0 {
				msg = "the " + d.Backend + " backend (REST) takes no filters"
			} else {
				msg += "; filterable fields: " + joinComma(d.FilterFields)
			}
			return nil, dialects.BadQuery("filter", msg)
		}
		if f.Value.Kind == dialects.Null {
			return nil, dialects.BadQuery("filter", "the "+d.Backend+" backend (REST) cannot filter on null")
		}
		if _, dup := v[f.Field]; dup {
			return nil, dialects.BadQuery("filter", "filter on "+strconv.Quote(f.Field)+" is given twice")
		}
		if f.Op == dialects.OpIn {
			texts := make([]string, len(f.Values))
			for i, x := range f.Values {
				texts[i] = x.Text
			}
			v[f.Field] = texts
			continue
		}
		v.Set(f.Field, f.Value.Text)
	}
	var p *pages
	if list {
		p = &pages{tr: tr}
		if d.keysetOrder(q.Sort) {
			p.keyset = d.Keyset
		}
		if err := d.continueAt(t.Cursor, v, &q, p); err != nil {
			return nil, err
		}
		changed = changed || t.Cursor != nil
	} else if t.Cursor != nil {
		return nil, dialects.BadCursor(d.Backend)
	}
	if changed {
		r.URL.RawQuery = v.Encode()
	}
	if p != nil {
		return p, nil
	}
	return tr, nil
}

// keysetOrder reports whether a listing sorted by sort is in the keyset's order.
func (d *Dialect) keysetOrder(sort []dialects.SortKey) bool {
	return d.Keyset != "" && (len(sort) == 0 || len(sort) == 1 && sort[0].Field == d.Keyset && !sort[0].Desc)
}

// continueAt puts a cursor's position into the backend's query v.
func (d *Dialect) continueAt(pos *envelope.Position, v url.Values, q *dialects.Query, p *pages) error {
	if pos == nil {
		return nil
	}
	switch pos.Kind {
	case envelope.PosKeyset:
		key, ok := dialects.KeyText(pos.Value)
		if !ok || p.keyset == "" {
			return dialects.BadCursor(d.Backend)
		}
		param := d.KeysetParam
		if param == "" {
			param = "after"
		}
		v.Del("page")
		v.Set("sort", d.Keyset)
		v.Set(param, key)
		p.after, p.limit = true, q.Limit
	case envelope.PosOffset:
		off, ok := dialects.Offset(pos)
		if !ok {
			return dialects.BadCursor(d.Backend)
		}
		page := dialects.PageOf(off, q.Limit)
		if page == 0 {
			return dialects.BadQuery("limit", "the "+d.Backend+" backend (REST) continues this cursor only with a limit that divides "+strconv.Itoa(off)+" (the records before it)")
		}
		v.Set("page", strconv.Itoa(page))
		p.keyset = "" // an offset listing goes on by offset
	default:
		return dialects.BadCursor(d.Backend)
	}
	return nil
}

// pages reads a collection answer and says where the next page starts: after
// the last record's key when the listing is in keyset order, else at the
// next page's offset.
type pages struct {
	tr     envelope.Translator
	keyset string // the key field when the listing is in its order
	after  bool   // the request continued after a key: the backend's Link says whether more follow
	limit  int
}

func (p *pages) Translate(a *envelope.Answer) envelope.Result {
	res := p.tr.Translate(a)
	pg := res.Pagination
	if pg == nil || len(res.Errors) > 0 {
		return res
	}
	if p.after {
		pg.Page, pg.Limit = 0, p.limit // no page number after a key
		pg.HasNext = envelope.LinkHasNext(a.Header.Values("Link"))
	}
	if !pg.HasNext {
		return res
	}
	if p.keyset != "" {
		if key, ok := dialects.LastKey(res.Data, p.keyset); ok {
			res.Next = envelope.Position{Kind: envelope.PosKeyset, Value: key}
		}
		return res
	}
	if !p.after && pg.Page > 0 {
		res.Next = envelope.Position{Kind: envelope.PosOffset, Value: strconv.Itoa(pg.Page * pg.Limit)}
	}
	return res
}

// linkRewriter puts the client's paths into the backend's Link headers (a
// REST backend's first/prev/next/last links name its own paths), then
// translates like REST.
type linkRewriter struct{ from, to string }

func (l linkRewriter) Translate(a *envelope.Answer) envelope.Result {
	if links := a.Header["Link"]; len(links) > 0 {
		from, to := "<"+l.from, "<"+l.to
		for i, v := range links {
			links[i] = strings.ReplaceAll(v, from, to)
		}
	}
	return envelope.REST.Translate(a)
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

var _ dialects.Dialect = (*Dialect)(nil)
