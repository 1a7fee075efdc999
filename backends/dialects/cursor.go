package dialects

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/cursor"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Cursors: `?cursor=X` continues a collection where the page that gave X
// (`pagination.next_cursor`) ended. The cursor is sealed by the edge
// (internal/cursor) and bound to the company, to the backend, version and
// collection path, and to every query parameter but page, limit and cursor
// (filters, sort, anything else); limit may change from page to page. Each
// dialect reads the position from Target.Cursor in its backend's terms
// (keyset, OData $skiptoken, or offset) and reports the next one in
// envelope.Result.Next; a Pager checks the cursor on the way in and seals
// the next one on the way out.

// Pager is the cursor handling of one collection request: made by
// StartPage before the dialect rewrites the request, bound to the caller's
// company once it is known (Bind), wrapped around the dialect's translator
// (Wrap). Not safe for concurrent use; one request uses it.
type Pager struct {
	codec    *cursor.Codec
	target   [3]string // backend, version, collection path
	rawQuery string    // the client's query without cursor
	query    string    // the query's fingerprint, computed when first needed
	tok      cursor.Token
	has      bool // the request continues a cursor
	company  string
	bound    bool
}

// StartPage reads `cursor` of a collection GET: it verifies the cursor's
// signature and query binding, removes it from the request's query and
// puts its position in t.Cursor for the dialect. A bad cursor, a cursor of
// another query, or page given with cursor is a 400 BAD_REQUEST naming
// cursor. The company binding is checked by Bind.
func StartPage(c *cursor.Codec, r *http.Request, t *Target) (*Pager, error) {
	p := &Pager{codec: c, target: [3]string{t.Backend, t.Version, t.JoinPath()}, rawQuery: r.URL.RawQuery}
	if !strings.Contains(p.rawQuery, "cursor") { // no parse for the common request
		return p, nil
	}
	v, err := url.ParseQuery(p.rawQuery)
	if err != nil {
		return nil, BadQuery("", "the query string is malformed")
	}
	cs, ok := v["cursor"]
	if !ok {
		return p, nil
	}
	if len(cs) != 1 {
		return nil, BadQuery("cursor", "cursor must be given once")
	}
	if _, ok := v["page"]; ok {
		return nil, BadQuery("cursor", "page and cursor cannot be used together: the cursor says where the page starts")
	}
	delete(v, "cursor")
	p.query = p.fingerprint(v)
	tok, err := c.Verify(cs[0], p.query)
	switch err {
	case nil:
	case cursor.ErrOtherQuery:
		return nil, BadQuery("cursor", "the cursor belongs to another listing: keep the collection, filter and sort of the request that gave it")
	default:
		return nil, BadQuery("cursor", "the cursor is not valid")
	}
	p.tok, p.has = tok, true
	p.rawQuery = v.Encode()
	r.URL.RawQuery = p.rawQuery
	t.Cursor = &envelope.Position{Kind: tok.Kind, Value: tok.Pos}
	return p, nil
}

// Continues reports whether the request carried a cursor.
func (p *Pager) Continues() bool { return p.has }

// Bind records the caller's verified company; a cursor issued to another
// company is a 400 BAD_REQUEST naming cursor (the same answer as a
// tampered one: it tells nothing about the other company).
func (p *Pager) Bind(company string) error {
	p.company, p.bound = company, true
	if p.has && p.tok.Company != company {
		return BadQuery("cursor", "the cursor is not valid")
	}
	return nil
}

// fingerprint is the query binding of a cursor: the target and every query
// parameter but page, limit and cursor, in a canonical order.
func (p *Pager) fingerprint(v url.Values) string {
	parts := make([]string, 0, 3+2*len(v))
	parts = append(parts, p.target[:]...)
	keys := make([]string, 0, len(v))
	for k := range v {
		switch k {
		case "page", "limit", "cursor":
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		vals := slices.Clone(v[k])
		slices.Sort(vals)
		parts = append(parts, k, strconv.Itoa(len(vals)))
		parts = append(parts, vals...)
	}
	return cursor.QueryHash(parts...)
}

// Wrap returns tr with the cursor of the next page sealed into the
// pagination of each collection answer that has one.
func (p *Pager) Wrap(tr envelope.Translator) envelope.Translator {
	return pagerTranslator{p: p, tr: tr}
}

type pagerTranslator struct {
	p  *Pager
	tr envelope.Translator
}

func (pt pagerTranslator) Translate(a *envelope.Answer) envelope.Result {
	p := pt.p
	if p.has && !p.bound {
		// no handler checked the company (a route without erp_authz): the
		// continued page is not shown
		return envelope.Result{Status: http.StatusBadRequest, Errors: []envelope.Error{{
			Code: contract.CodeBadRequest, Message: "the cursor cannot be checked on this route", Field: "cursor"}}}
	}
	res := pt.tr.Translate(a)
	pg := res.Pagination
	if pg == nil || !pg.HasNext || res.Next.Kind == "" || !p.bound || p.company == "" || len(res.Errors) > 0 {
		return res
	}
	if p.query == "" {
		v, err := url.ParseQuery(p.rawQuery)
		if err != nil {
			return res
		}
		p.query = p.fingerprint(v)
	}
	pg.NextCursor = p.codec.Seal(cursor.Token{Company: p.company, Query: p.query, Kind: res.Next.Kind, Pos: res.Next.Value})
	return res
}

// LastKey is the JSON text of field in the last object of the JSON array
// data (a string keeps its quotes); false when there is none or it is not a
// string or a number.
func LastKey(data []byte, field string) (string, bool) {
	var items []json.RawMessage
	if json.Unmarshal(data, &items) != nil || len(items) == 0 {
		return "", false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(items[len(items)-1], &obj) != nil {
		return "", false
	}
	raw := bytes.TrimSpace(obj[field])
	if len(raw) == 0 || (raw[0] != '"' && raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return "", false
	}
	return string(raw), true
}

// KeyText is a keyset position's value as text: a JSON string unquoted, a
// number as it is.
func KeyText(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	if raw[0] != '"' {
		return raw, IsNumber(raw)
	}
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		return "", false
	}
	return s, true
}

// IsNumber reports whether s is a JSON number.
func IsNumber(s string) bool { return isJSONNumber(s) }

// Offset reads an offset position: a decimal of at most maxOffset.
func Offset(pos *envelope.Position) (int, bool) {
	if pos.Kind != envelope.PosOffset {
		return 0, false
	}
	n, err := strconv.Atoi(pos.Value)
	if err != nil || n < 0 || n > maxPage*MaxLimit {
		return 0, false
	}
	return n, true
}

// BadCursor is the 400 for a cursor a dialect cannot continue (its
// position is of a kind this backend does not take).
func BadCursor(backend string) *contract.Error {
	return BadQuery("cursor", "the cursor cannot continue a listing of the "+backend+" backend")
}

// PageOf is the page number of a page starting at offset, or 0 when the
// offset is not on a page boundary of limit.
func PageOf(offset, limit int) int {
	if limit <= 0 || offset%limit != 0 {
		return 0
	}
	return offset/limit + 1
}
