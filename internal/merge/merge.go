// Package merge is the three-way merge of an RFC 7396 JSON merge patch:
// given the representation a client read (the base), the one the backend
// holds now (current) and the patch the client wrote against the base, it
// finds the changes the client made and whether anyone else changed the
// same fields since. It is Caddy-free; erp_merge (caddymodules/merge) uses
// it for `Prefer: merge=auto`.
package merge

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// Conflict is one field that the client and another writer both changed,
// to different values. Field is the dotted path of the member ("a.b");
// Base, Current and Proposed are its values in the base, in the current
// representation and after the client's patch (nil for an absent member,
// as for JSON null: RFC 7396 makes the two the same).
type Conflict struct {
	Field    string
	Base     any
	Current  any
	Proposed any
}

// ErrNotObject is returned when the base, the current representation or
// the patch is not a JSON object: only objects merge member by member.
var ErrNotObject = errors.New("merge: the patch and both representations must be JSON objects")

// Decode parses a JSON document with numbers kept exact (json.Number).
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("merge: trailing data after the JSON value")
	}
	return v, nil
}

// ThreeWay merges patch, written against base, onto current. It returns
// the patch to send against current — only the members whose patched value
// differs from the base (a member the client sent unchanged never reverts
// another writer's change), less those that current already holds — and
// the conflicts: the members the client changed that current changed too,
// to another value. Objects are merged member by member, recursively, as
// RFC 7396 applies them; anything else (arrays included) is one value. The
// conflicts are ordered by field. The result is to be sent only when there
// is no conflict.
func ThreeWay(base, current, patch map[string]any) (map[string]any, []Conflict) {
	var conflicts []Conflict
	out := threeWay("", base, current, patch, &conflicts)
	slices.SortFunc(conflicts, func(a, b Conflict) int { return strings.Compare(a.Field, b.Field) })
	return out, conflicts
}

func threeWay(prefix string, base, current, patch map[string]any, conflicts *[]Conflict) map[string]any {
	out := make(map[string]any, len(patch))
	for k, p := range patch {
		field := k
		if prefix != "" {
			field = prefix + "." + k
		}
		b, bok := base[k]
		c, cok := current[k]
		proposed, pok := Apply(b, bok, p)
		if equalMember(b, bok, proposed, pok) {
			continue // not a change of the client's
		}
		pObj, isObj := p.(map[string]any)
		bObj, bIsObj := b.(map[string]any)
		cObj, cIsObj := c.(map[string]any)
		if isObj && bIsObj && cIsObj {
			if sub := threeWay(field, bObj, cObj, pObj, conflicts); len(sub) > 0 {
				out[k] = sub
			}
			continue
		}
		switch {
		case equalMember(c, cok, b, bok): // untouched since the base: the client's change applies
			out[k] = p
		case equalMember(c, cok, proposed, pok): // the same change was made already
		default:
			*conflicts = append(*conflicts, Conflict{Field: field, Base: b, Current: c, Proposed: proposed})
		}
	}
	return out
}

// Apply applies the merge patch p to the member value target (present
// tells whether the member exists) as RFC 7396 does, and returns the
// result and whether the member exists afterwards. target is not modified.
func Apply(target any, present bool, p any) (any, bool) {
	if p == nil {
		return nil, false // null removes
	}
	pObj, ok := p.(map[string]any)
	if !ok {
		return p, true
	}
	tObj, ok := target.(map[string]any)
	if !ok || !present {
		tObj = nil
	}
	out := make(map[string]any, len(tObj)+len(pObj))
	for k, v := range tObj {
		out[k] = v
	}
	for k, v := range pObj {
		cur, cok := out[k]
		if nv, nok := Apply(cur, cok, v); nok {
			out[k] = nv
		} else {
			delete(out, k)
		}
	}
	return out, true
}

// equalMember compares two members: absent equals only absent (a member
// holding null is kept apart from none, though a patch cannot make one).
func equalMember(a any, aok bool, b any, bok bool) bool {
	if aok != bok {
		return false
	}
	return !aok || Equal(a, b)
}

// Equal compares two decoded JSON values; numbers compare by value, so 1,
// 1.0 and 1e0 are equal.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		return numberEqual(x, b)
	case float64:
		return numberEqual(json.Number(jsonFloat(x)), b)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func jsonFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func numberEqual(x json.Number, b any) bool {
	var y json.Number
	switch v := b.(type) {
	case json.Number:
		y = v
	case float64:
		y = json.Number(jsonFloat(v))
	default:
		return false
	}
	if x == y {
		return true
	}
	fx, err1 := x.Float64()
	fy, err2 := y.Float64()
	return err1 == nil && err2 == nil && fx == fy
}
