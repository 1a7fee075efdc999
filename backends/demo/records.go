package demo

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// record is an entity as the OData and JSON-RPC services see it: field name
// to a JSON value (string, float64, bool or nil). Dates are "YYYY-MM-DD"
// strings, which order correctly as text.
type record = map[string]any

// sortKey orders records by one field.
type sortKey struct {
	field string
	desc  bool
}

// productRecord is a product with the field names and values of the REST
// v1 representation, so the three protocols serve the same data.
func productRecord(x *product) record {
	return record{"id": x.ID, "sku": x.SKU, "name": x.Name, "price": centsNumber(x.PriceCents),
		"currency": x.Currency, "stock": float64(x.Stock)}
}

// compareValues orders two JSON values of the same type; nil sorts first.
func compareValues(a, b any) (int, error) {
	switch {
	case a == nil && b == nil:
		return 0, nil
	case a == nil:
		return -1, nil
	case b == nil:
		return 1, nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y), nil
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0, nil
			case !x:
				return -1, nil
			}
			return 1, nil
		}
	}
	return 0, fmt.Errorf("cannot compare %s with %s", typeName(a), typeName(b))
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a value"
}

// sortRecords sorts by the keys, then by id (a total order, as the REST
// lists do). Unknown fields were rejected before.
func sortRecords(recs []record, keys []sortKey) {
	slices.SortStableFunc(recs, func(a, b record) int {
		for _, k := range keys {
			c, _ := compareValues(a[k.field], b[k.field])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		c, _ := compareValues(a["id"], b["id"])
		return c
	})
}

// page returns recs[offset:offset+limit], clamped.
func page(recs []record, offset, limit int) []record {
	if offset >= len(recs) {
		return []record{}
	}
	return recs[offset:min(len(recs), offset+limit)]
}

// likeMatch matches SQL LIKE: % any run, _ one character, \ escapes the next.
func likeMatch(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	p, t := []rune(pattern), []rune(s)
	var match func(i, j int) bool
	match = func(i, j int) bool {
		for i < len(p) {
			switch p[i] {
			case '%':
				for k := j; k <= len(t); k++ {
					if match(i+1, k) {
						return true
					}
				}
				return false
			case '_':
				if j >= len(t) {
					return false
				}
			case '\\':
				if i+1 < len(p) {
					i++
				}
				fallthrough
			default:
				if j >= len(t) || t[j] != p[i] {
					return false
				}
			}
			i++
			j++
		}
		return j == len(t)
	}
	return match(0, 0)
}

// isInteger reports whether f is a whole number.
func isInteger(f float64) bool { return f == math.Trunc(f) && !math.IsInf(f, 0) }
