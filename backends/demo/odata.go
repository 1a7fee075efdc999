package demo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// The OData v4 service (read-only), company-scoped by the company of the
// verified edge assertion:
//
//	GET /odata/v1/                       service document
//	GET /odata/v1/LedgerEntries          the general ledger
//	GET /odata/v1/LedgerEntries('id')    one entry
//	GET /odata/v1/Products, Products('id')  the products, with the REST v1 fields
//
// Collections take $top (at most 200), $skip, $orderby (field [asc|desc],
// comma-separated), $count=true and $filter: comparisons eq ne gt ge lt le,
// OData 4.01's `field in ('a','b')`,
// contains/startswith/endswith(field,'text'), and, or, not and parentheses;
// literals 'text' (a quote doubled: 'O''Brien'), numbers, true, false, null
// and dates (2026-01-31). Without $top at most 50 entities are returned
// (or `Prefer: odata.maxpagesize=N`, up to 200, answered with
// Preference-Applied), with @odata.nextLink to the rest: the same query and
// a $skiptoken (the last id in the default order, an offset in another). Errors are the OData error object
// {"error":{"code","message","target","details"}}.

const (
	odataPrefix      = "/odata/v1"
	odataMaxPageSize = 50
	odataMaxTop      = 200
)

type odataSet struct {
	records func(c *company) []record
}

var odataSets = map[string]odataSet{
	"LedgerEntries": {records: func(c *company) []record {
		out := make([]record, len(c.ledger))
		for i, e := range c.ledger {
			out[i] = e.record()
		}
		return out
	}},
	"Products": {records: func(c *company) []record {
		out := make([]record, 0, len(c.products))
		for _, p := range c.products {
			out = append(out, productRecord(p))
		}
		return out
	}},
}

type odataErr struct {
	status         int
	code, msg, tgt string
}

func writeODataError(w http.ResponseWriter, e odataErr) {
	body := map[string]any{"error": map[string]any{"code": e.code, "message": e.msg, "target": e.tgt,
		"details": []map[string]string{{"code": e.code, "message": e.msg, "target": e.tgt}}}}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json;odata.metadata=minimal")
	h.Set("OData-Version", "4.0")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

func writeOData(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeODataError(w, odataErr{http.StatusInternalServerError, "InternalError", "encoding failed", ""})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;odata.metadata=minimal")
	h.Set("OData-Version", "4.0")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) serveOData(w http.ResponseWriter, r *http.Request, rest string) {
	if key, ok := strings.CutPrefix(strings.TrimPrefix(rest, "/"), "LedgerEntries("); ok && r.Method == http.MethodPatch {
		c, p := s.company(r)
		if p != nil {
			writeODataError(w, odataErr{p.Status, "Company", p.Detail, ""})
			return
		}
		s.patchLedgerEntry(w, r, c, key) // odata_etag.go
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeODataError(w, odataErr{http.StatusMethodNotAllowed, "MethodNotAllowed", "this service is read-only", ""})
		return
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		writeOData(w, map[string]any{"@odata.context": "$metadata", "value": []map[string]string{
			{"name": "LedgerEntries", "kind": "EntitySet", "url": "LedgerEntries"},
			{"name": "Products", "kind": "EntitySet", "url": "Products"},
		}})
		return
	}
	name, key, hasKey := strings.Cut(rest, "(")
	set, ok := odataSets[name]
	if !ok {
		writeODataError(w, odataErr{http.StatusNotFound, "NotFound", "no entity set " + strconv.Quote(name), ""})
		return
	}
	c, p := s.company(r)
	if p != nil {
		writeODataError(w, odataErr{p.Status, "Company", p.Detail, ""})
		return
	}
	s.mu.RLock()
	recs := set.records(c)
	s.mu.RUnlock()
	if hasKey {
		k, ok := strings.CutSuffix(key, ")")
		if !ok || len(k) < 2 || k[0] != '\'' || k[len(k)-1] != '\'' {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidKey", "keys are quoted strings: " + name + "('id')", ""})
			return
		}
		id := strings.ReplaceAll(k[1:len(k)-1], "''", "'")
		for _, rec := range recs {
			if rec["id"] == id {
				out := record{"@odata.context": "$metadata#" + name + "/$entity"}
				for f, v := range rec {
					out[f] = v
				}
				tag := odataETag(rec)
				out["@odata.etag"] = tag
				if ifNoneMatchHits(r, tag) {
					w.Header().Set("ETag", tag)
					w.WriteHeader(http.StatusNotModified)
					return
				}
				w.Header().Set("ETag", tag)
				writeOData(w, out)
				return
			}
		}
		writeODataError(w, odataErr{http.StatusNotFound, "NotFound", name + " " + strconv.Quote(id) + " does not exist", ""})
		return
	}
	s.odataList(w, r, name, recs)
}

func (s *Server) odataList(w http.ResponseWriter, r *http.Request, name string, recs []record) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "$top", "$skip", "$orderby", "$filter", "$count", "$skiptoken":
			if len(q[k]) != 1 {
				writeODataError(w, odataErr{http.StatusBadRequest, "InvalidQuery", k + " must be given once", k})
				return
			}
		default:
			if strings.HasPrefix(k, "$") {
				writeODataError(w, odataErr{http.StatusNotImplemented, "NotImplemented", "the system query option " + k + " is not supported", k})
				return
			}
		}
	}
	top, skip := -1, 0
	if v := q.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > odataMaxTop {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidQuery", "$top must be an integer between 0 and " + strconv.Itoa(odataMaxTop), "$top"})
			return
		}
		top = n
	}
	if v := q.Get("$skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidQuery", "$skip must be a non-negative integer", "$skip"})
			return
		}
		skip = n
	}
	count := false
	if v, ok := q["$count"]; ok {
		switch v[0] {
		case "true":
			count = true
		case "false":
		default:
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidQuery", "$count must be true or false", "$count"})
			return
		}
	}
	fields := map[string]bool{}
	if len(recs) > 0 {
		for f := range recs[0] {
			fields[f] = true
		}
	}
	if f := q.Get("$filter"); f != "" {
		pred, err := parseODataFilter(f, fields)
		if err != nil {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidFilter", err.Error(), "$filter"})
			return
		}
		kept := recs[:0]
		for _, rec := range recs {
			ok, err := pred(rec)
			if err != nil {
				writeODataError(w, odataErr{http.StatusBadRequest, "InvalidFilter", err.Error(), "$filter"})
				return
			}
			if ok {
				kept = append(kept, rec)
			}
		}
		recs = kept
	}
	var keys []sortKey
	if o := q.Get("$orderby"); o != "" {
		for part := range strings.SplitSeq(o, ",") {
			f := strings.Fields(part)
			if len(f) == 0 || len(f) > 2 || !fields[f[0]] || (len(f) == 2 && f[1] != "asc" && f[1] != "desc") {
				writeODataError(w, odataErr{http.StatusBadRequest, "InvalidOrderBy", "cannot order by " + strconv.Quote(strings.TrimSpace(part)), "$orderby"})
				return
			}
			keys = append(keys, sortKey{field: f[0], desc: len(f) == 2 && f[1] == "desc"})
		}
	}
	sortRecords(recs, keys)
	total := len(recs)
	size, serverPaged := top, false
	if top < 0 {
		size, serverPaged = odataMaxPageSize, true
		if n := maxPageSize(r.Header.Values("Prefer")); n > 0 {
			size = min(n, odataMaxTop)
			w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(size))
		}
	}
	if tok, ok := q["$skiptoken"]; ok {
		at, err := readSkipToken(tok[0], q.Has("$skip"), len(keys) > 0, recs)
		if err != nil {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidSkipToken", err.Error(), "$skiptoken"})
			return
		}
		skip = at
	}
	pg := page(recs, skip, size)
	tagged := make([]record, len(pg)) // the stored records stay untouched
	for i, rec := range pg {
		t := make(record, len(rec)+1)
		for f, v := range rec {
			t[f] = v
		}
		t["@odata.etag"] = odataETag(rec)
		tagged[i] = t
	}
	out := map[string]any{"@odata.context": "$metadata#" + name, "value": tagged}
	if count {
		out["@odata.count"] = total
	}
	if serverPaged && skip+len(pg) < total {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Del("$skip")
		next.Set("$skiptoken", skipToken(pg[len(pg)-1], skip+len(pg), len(keys) > 0))
		out["@odata.nextLink"] = name + "?" + next.Encode()
	}
	writeOData(w, out)
}

// ---- server-driven paging ----

// maxPageSize reads `Prefer: odata.maxpagesize=N` (0: not asked).
func maxPageSize(prefer []string) int {
	for _, h := range prefer {
		for pref := range strings.SplitSeq(h, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "odata.maxpagesize") {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return 0
}

// skipToken is the $skiptoken of the page after last: in the default
// (id) order the last id, so entities added meanwhile neither repeat nor
// go missing; in another order the offset of the next entity.
func skipToken(last record, offset int, ordered bool) string {
	if ordered {
		return "o" + strconv.Itoa(offset)
	}
	id, _ := last["id"].(string)
	return "k" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// readSkipToken is the offset in recs (sorted) where a $skiptoken's page starts.
func readSkipToken(tok string, withSkip, ordered bool, recs []record) (int, error) {
	if withSkip {
		return 0, fmt.Errorf("$skiptoken cannot go with $skip")
	}
	switch {
	case strings.HasPrefix(tok, "o") && ordered:
		n, err := strconv.Atoi(tok[1:])
		if err != nil || n < 0 {
			break
		}
		return n, nil
	case strings.HasPrefix(tok, "k") && !ordered:
		id, err := base64.RawURLEncoding.DecodeString(tok[1:])
		if err != nil {
			break
		}
		i, found := slices.BinarySearchFunc(recs, string(id), func(rec record, id string) int {
			s, _ := rec["id"].(string)
			return strings.Compare(s, id)
		})
		if found {
			i++
		}
		return i, nil
	}
	return 0, fmt.Errorf("the $skiptoken is not one this service gave for this query")
}

// ---- $filter ----

type odataTok struct {
	kind byte // 'i' identifier, 's' string, 'n' number, 'd' date, '(' ')' ','
	text string
	num  float64
}

func lexOData(s string) ([]odataTok, error) {
	var toks []odataTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, odataTok{kind: c})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated string literal")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, odataTok{kind: 's', text: b.String()})
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '-' || s[j] == 'e' || s[j] == 'E' || s[j] == '+') {
				j++
			}
			lit := s[i:j]
			if isDateLiteral(lit) {
				toks = append(toks, odataTok{kind: 'd', text: lit})
			} else if f, err := strconv.ParseFloat(lit, 64); err == nil {
				toks = append(toks, odataTok{kind: 'n', num: f, text: lit})
			} else {
				return nil, fmt.Errorf("invalid literal %q", lit)
			}
			i = j
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '/' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			toks = append(toks, odataTok{kind: 'i', text: s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return toks, nil
}

func isDateLiteral(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' && strings.Count(s, "-") == 2
}

type odataParser struct {
	toks   []odataTok
	pos    int
	fields map[string]bool
}

type predicate func(record) (bool, error)

// parseODataFilter parses a $filter expression over the known fields.
func parseODataFilter(s string, fields map[string]bool) (predicate, error) {
	toks, err := lexOData(s)
	if err != nil {
		return nil, err
	}
	p := &odataParser{toks: toks, fields: fields}
	pred, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q after the expression", p.toks[p.pos].text+string(p.toks[p.pos].kind))
	}
	return pred, nil
}

func (p *odataParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == 'i' && p.toks[p.pos].text == w
}

func (p *odataParser) or() (predicate, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peekWord("or") {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r record) (bool, error) {
			a, err := l(r)
			if err != nil || a {
				return a, err
			}
			return right(r)
		}
	}
	return left, nil
}

func (p *odataParser) and() (predicate, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peekWord("and") {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r record) (bool, error) {
			a, err := l(r)
			if err != nil || !a {
				return a, err
			}
			return right(r)
		}
	}
	return left, nil
}

func (p *odataParser) expect(kind byte) error {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != kind {
		return fmt.Errorf("expected %q", string(kind))
	}
	p.pos++
	return nil
}

func (p *odataParser) unary() (predicate, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("incomplete expression")
	}
	t := p.toks[p.pos]
	switch {
	case t.kind == 'i' && t.text == "not":
		p.pos++
		inner, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(r record) (bool, error) { v, err := inner(r); return !v, err }, nil
	case t.kind == '(':
		p.pos++
		inner, err := p.or()
		if err != nil {
			return nil, err
		}
		return inner, p.expect(')')
	case t.kind == 'i' && (t.text == "contains" || t.text == "startswith" || t.text == "endswith"):
		p.pos++
		if err := p.expect('('); err != nil {
			return nil, err
		}
		field, err := p.field()
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != 's' {
			return nil, fmt.Errorf("%s needs a string literal", t.text)
		}
		lit := p.toks[p.pos].text
		p.pos++
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		fn := map[string]func(string, string) bool{"contains": strings.Contains, "startswith": strings.HasPrefix, "endswith": strings.HasSuffix}[t.text]
		return func(r record) (bool, error) {
			s, ok := r[field].(string)
			if !ok {
				return false, fmt.Errorf("%s needs a text field; %s is not one", t.text, field)
			}
			return fn(s, lit), nil
		}, nil
	}
	field, err := p.field()
	if err != nil {
		return nil, err
	}
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'i' {
		return nil, fmt.Errorf("expected an operator after %s", field)
	}
	op := p.toks[p.pos].text
	switch op {
	case "eq", "ne", "gt", "ge", "lt", "le":
	case "in":
		p.pos++
		return p.in(field)
	default:
		return nil, fmt.Errorf("unknown operator %q", op)
	}
	p.pos++
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	return func(r record) (bool, error) {
		v := r[field]
		if lit == nil || v == nil {
			eq := lit == nil && v == nil
			switch op {
			case "eq":
				return eq, nil
			case "ne":
				return !eq, nil
			}
			return false, nil
		}
		c, err := compareValues(v, lit)
		if err != nil {
			return false, fmt.Errorf("%s: %v", field, err)
		}
		switch op {
		case "eq":
			return c == 0, nil
		case "ne":
			return c != 0, nil
		case "gt":
			return c > 0, nil
		case "ge":
			return c >= 0, nil
		case "lt":
			return c < 0, nil
		}
		return c <= 0, nil
	}, nil
}

// in parses the list of `field in (lit, …)` (OData 4.01): true when the
// field equals one of the literals. Like eq, a literal of another type than
// the field's value is an error, not a mismatch.
func (p *odataParser) in(field string) (predicate, error) {
	if err := p.expect('('); err != nil {
		return nil, fmt.Errorf("in needs a parenthesized list of literals")
	}
	var list []any
	for {
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		list = append(list, lit)
		if p.pos < len(p.toks) && p.toks[p.pos].kind == ',' {
			p.pos++
			continue
		}
		if err := p.expect(')'); err != nil {
			return nil, fmt.Errorf("in: expected ',' or ')' after a literal")
		}
		break
	}
	return func(r record) (bool, error) {
		v := r[field]
		for _, lit := range list {
			if lit == nil || v == nil {
				if lit == nil && v == nil {
					return true, nil
				}
				continue
			}
			c, err := compareValues(v, lit)
			if err != nil {
				return false, fmt.Errorf("%s: %v", field, err)
			}
			if c == 0 {
				return true, nil
			}
		}
		return false, nil
	}, nil
}

func (p *odataParser) field() (string, error) {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'i' {
		return "", fmt.Errorf("expected a property name")
	}
	f := p.toks[p.pos].text
	if !p.fields[f] {
		return "", fmt.Errorf("could not find a property named %q", f)
	}
	p.pos++
	return f, nil
}

func (p *odataParser) literal() (any, error) {
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("expected a literal")
	}
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case 's', 'd':
		return t.text, nil
	case 'n':
		return t.num, nil
	case 'i':
		switch t.text {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
	}
	return nil, fmt.Errorf("expected a literal, got %q", t.text)
}

// odataETag is an entity's version as OData carries it in @odata.etag
// (and the ETag header of a single entity): the strong hash of its fields.
func odataETag(rec record) string {
	body, err := json.Marshal(rec)
	if err != nil {
		return `"0"`
	}
	return etagOf(body)
}
