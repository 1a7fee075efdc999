// Package rest is the REST dialect: requests pass through with their path
// mapped onto the backend's base URL; `filter=field:eq:value` becomes the
// backend's own `field=value` and `filter=field:in:v1,v2` the repeated
// parameter `field=v1&field=v2`, for the fields the backend is known to
// filter on. A REST backend behind this dialect must therefore read repeated
// parameters as "any of" (the demo ERP does); one that kept only the first
// or the last would answer a different query. Answers are read by
// envelope.REST (JSON as data, `X-Total-Count`,
// `X-Page`/`X-Per-Page` and `Link: rel="next"` as pagination, RFC 9457
// problem details as errors).
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
}

// Rewrite maps the path; the query passes through except `filter`.
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
	if r.URL.RawQuery == "" {
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
	if len(q.Filters) == 0 {
		return tr, nil
	}
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
	r.URL.RawQuery = v.Encode()
	return tr, nil
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
