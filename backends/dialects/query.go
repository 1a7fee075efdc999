package dialects

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the envelope's query.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	MaxSortKeys  = 3
	MaxFilters   = 10
	maxFieldLen  = 64
	maxValueLen  = 256
	maxPage      = 1_000_000
	// MaxInValues is the most values one `in` filter takes (GraphQL's
	// executor fetches related records in chunks of this size).
	MaxInValues = 100
	// maxInLen bounds the whole value of an `in` filter (each element
	// keeps maxValueLen).
	maxInLen = 8 << 10
)

// Op is a filter operator.
type Op uint8

// Filter operators.
const (
	OpEq Op = iota + 1
	OpNe
	OpGt
	OpGe
	OpLt
	OpLe
	OpContains
	OpStartsWith
	OpIn // any of Filter.Values
)

var opNames = [...]string{OpEq: "eq", OpNe: "ne", OpGt: "gt", OpGe: "ge", OpLt: "lt", OpLe: "le",
	OpContains: "contains", OpStartsWith: "startswith", OpIn: "in"}

// operatorList is the operators as the refusals list them.
const operatorList = "eq, ne, gt, ge, lt, le, contains, startswith, in"

func (o Op) String() string {
	if int(o) < len(opNames) && o > 0 {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

func parseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if i > 0 && n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// Kind is the type of a filter value.
type Kind uint8

// Value kinds.
const (
	String Kind = iota + 1
	Number
	Bool
	Null
	Date
)

// Value is a typed filter value. Text is the string for String, the JSON
// number text for Number, "true"/"false" for Bool, "" for Null and
// "YYYY-MM-DD" for Date.
type Value struct {
	Kind Kind
	Text string
}

// SortKey is one key of sort.
type SortKey struct {
	Field string
	Desc  bool
}

// JoinSort writes sort keys as "field asc" / "field desc" joined by sep: the
// order syntax OData ($orderby) and Odoo (order) share.
func JoinSort(keys []SortKey, sep string) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(k.Field)
		if k.Desc {
			b.WriteString(" desc")
		} else {
			b.WriteString(" asc")
		}
	}
	return b.String()
}

// Filter is one filter=field:op:value. Value holds the value of every
// operator but OpIn; Values holds the 1..MaxInValues values of OpIn (and is
// nil for the others).
type Filter struct {
	Field  string
	Op     Op
	Value  Value
	Values []Value
}

// Query is the parsed envelope query.
type Query struct {
	Page, Limit int // always set (defaults applied)
	// PageSet and LimitSet tell whether the client sent them.
	PageSet, LimitSet bool
	Sort              []SortKey
	Filters           []Filter
	// Other lists the names of any other query parameters, sorted.
	Other []string
	// From, when FromSet, is the offset of the page (a cursor's position),
	// in place of Page.
	From    int
	FromSet bool
}

// Offset is the number of records before the page.
func (q *Query) Offset() int {
	if q.FromSet {
		return q.From
	}
	return (q.Page - 1) * q.Limit
}

// ParseQuery validates the envelope's page, limit, sort and filter.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Page: 1, Limit: DefaultLimit}
	for name, vals := range v {
		switch name {
		case "page", "limit", "sort":
			if len(vals) != 1 {
				return q, BadQuery(name, name+" must be given once")
			}
		case "filter":
		default:
			q.Other = append(q.Other, name)
		}
	}
	if len(q.Other) > 1 {
		sortStrings(q.Other)
	}
	if s, ok := v["page"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > maxPage {
			return q, BadQuery("page", "page must be an integer between 1 and "+strconv.Itoa(maxPage))
		}
		q.Page, q.PageSet = n, true
	}
	if s, ok := v["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > MaxLimit {
			return q, BadQuery("limit", "limit must be an integer between 1 and "+strconv.Itoa(MaxLimit))
		}
		q.Limit, q.LimitSet = n, true
	}
	if s, ok := v["sort"]; ok {
		keys, err := parseSort(s[0])
		if err != nil {
			return q, err
		}
		q.Sort = keys
	}
	if fs := v["filter"]; len(fs) > 0 {
		if len(fs) > MaxFilters {
			return q, BadQuery("filter", "at most "+strconv.Itoa(MaxFilters)+" filters")
		}
		q.Filters = make([]Filter, 0, len(fs))
		for _, f := range fs {
			pf, err := parseFilter(f)
			if err != nil {
				return q, err
			}
			q.Filters = append(q.Filters, pf)
		}
	}
	return q, nil
}

func parseSort(s string) ([]SortKey, error) {
	if s == "" {
		return nil, BadQuery("sort", "sort must name at least one field")
	}
	n := strings.Count(s, ",") + 1
	if n > MaxSortKeys {
		return nil, BadQuery("sort", "sort takes at most "+strconv.Itoa(MaxSortKeys)+" fields")
	}
	keys := make([]SortKey, 0, n)
	for part := range strings.SplitSeq(s, ",") {
		name, desc := strings.CutPrefix(part, "-")
		if !desc {
			name = strings.TrimPrefix(name, "+")
		}
		if !ValidField(name) {
			return nil, BadQuery("sort", "sort: "+strconv.Quote(part)+" is not a field name")
		}
		for _, k := range keys {
			if k.Field == name {
				return nil, BadQuery("sort", "sort: field "+strconv.Quote(name)+" is given twice")
			}
		}
		keys = append(keys, SortKey{Field: name, Desc: desc})
	}
	return keys, nil
}

func parseFilter(s string) (Filter, error) {
	field, rest, ok1 := strings.Cut(s, ":")
	opName, raw, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return Filter{}, BadQuery("filter", "filter must be field:op:value, e.g. status:eq:paid")
	}
	if !ValidField(field) {
		return Filter{}, BadQuery("filter", "filter: "+strconv.Quote(field)+" is not a field name")
	}
	op, ok := parseOp(opName)
	if !ok {
		return Filter{}, BadQuery("filter", "filter: unknown operator "+strconv.Quote(opName)+
			"; operators: "+operatorList)
	}
	if op == OpIn {
		return parseIn(field, raw)
	}
	if len(raw) > maxValueLen || !utf8.ValidString(raw) || hasControl(raw) {
		return Filter{}, BadQuery("filter", "filter: the value of "+field+" must be printable UTF-8 of at most "+strconv.Itoa(maxValueLen)+" bytes")
	}
	val, err := parseValue(raw)
	if err != nil {
		return Filter{}, err
	}
	if val.Kind == Null && op != OpEq && op != OpNe {
		return Filter{}, BadQuery("filter", "filter: null can only be compared with eq or ne")
	}
	if op == OpContains || op == OpStartsWith {
		if val.Kind == Null || val.Text == "" {
			return Filter{}, BadQuery("filter", "filter: "+op.String()+" needs a non-empty text value")
		}
		val.Kind = String
	}
	return Filter{Field: field, Op: op, Value: val}, nil
}

// parseIn parses the value of field:in:v1,v2,…: comma-separated elements,
// each typed like a single value; a JSON-quoted element may hold commas and
// escaped quotes. null, empty elements and more than MaxInValues elements
// are refused.
func parseIn(field, raw string) (Filter, error) {
	if len(raw) > maxInLen || !utf8.ValidString(raw) || hasControl(raw) {
		return Filter{}, BadQuery("filter", "filter: the value of "+field+" must be printable UTF-8 of at most "+strconv.Itoa(maxInLen)+" bytes")
	}
	if raw == "" {
		return Filter{}, BadQuery("filter", "filter: in needs at least one value, e.g. "+field+":in:a,b")
	}
	vals := make([]Value, 0, min(strings.Count(raw, ",")+1, MaxInValues))
	for rest := raw; ; {
		elem, next, more, err := cutInElement(rest)
		if err != nil {
			return Filter{}, err
		}
		if elem == "" {
			return Filter{}, BadQuery("filter", "filter: the values of in must not be empty (element "+strconv.Itoa(len(vals)+1)+")")
		}
		if len(elem) > maxValueLen {
			return Filter{}, BadQuery("filter", "filter: each value of in is at most "+strconv.Itoa(maxValueLen)+" bytes")
		}
		if len(vals) == MaxInValues {
			return Filter{}, BadQuery("filter", "filter: in takes at most "+strconv.Itoa(MaxInValues)+" values")
		}
		val, err := parseValue(elem)
		if err != nil {
			return Filter{}, err
		}
		if val.Kind == Null {
			return Filter{}, BadQuery("filter", "filter: null cannot be a value of in")
		}
		vals = append(vals, val)
		if !more {
			break
		}
		rest = next
	}
	return Filter{Field: field, Op: OpIn, Values: vals}, nil
}

// cutInElement cuts the first element off an in list: up to the next comma,
// or, for an element starting with a quote, through its closing quote (which
// must end the list or be followed by a comma). more tells whether a comma
// followed.
func cutInElement(s string) (elem, rest string, more bool, err error) {
	if s != "" && s[0] == '"' {
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++ // the escaped byte cannot close the string
			case '"':
				elem, rest = s[:i+1], s[i+1:]
				if rest == "" {
					return elem, "", false, nil
				}
				if rest[0] != ',' {
					return "", "", false, BadQuery("filter", "filter: the quoted value "+clip(elem)+" of in must be followed by a comma or the end")
				}
				return elem, rest[1:], true, nil
			}
		}
		return "", "", false, BadQuery("filter", "filter: the value "+clip(s)+" of in has no closing quote")
	}
	elem, rest, more = strings.Cut(s, ",")
	return elem, rest, more, nil
}

// clip is s for a message: at most 40 bytes (whole runes) of the client's
// text, so a refusal of an 8 KiB list does not echo all of it.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	n := 40
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func parseValue(raw string) (Value, error) {
	switch {
	case len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"':
		s, err := strconv.Unquote(raw)
		if err != nil || hasControl(s) || !utf8.ValidString(s) {
			return Value{}, BadQuery("filter", "filter: "+raw+" is not a valid quoted string")
		}
		return Value{Kind: String, Text: s}, nil
	case raw == "true" || raw == "false":
		return Value{Kind: Bool, Text: raw}, nil
	case raw == "null":
		return Value{Kind: Null}, nil
	case isJSONNumber(raw):
		return Value{Kind: Number, Text: raw}, nil
	case isDate(raw):
		return Value{Kind: Date, Text: raw}, nil
	}
	return Value{Kind: String, Text: raw}, nil
}

// ValidField reports whether s is a field name: [A-Za-z_][A-Za-z0-9_]*, at
// most 64 bytes. Field names are never quoted in any backend language, so
// this is what keeps them from injecting syntax.
func ValidField(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// isJSONNumber matches the JSON number grammar (RFC 8259 §6) and rejects
// values that would not survive a round trip through float64's range.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i != len(s) {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func isDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// IsInteger reports whether s is a decimal integer without sign or leading
// zeros (how a numeric record id looks in a path).
func IsInteger(s string) bool {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
