package graphql

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgate/erpgate/contract"
)

// Bounds of one execution.
const (
	// maxObjects is the most objects one response holds.
	maxObjects = 10000
	// relationLimit is the page size of a batched relation call.
	relationLimit = 200
	// maxRelationPages is how many pages a batched relation call follows.
	maxRelationPages = 10
	// maxBatchErrors is how many errors a failed batch reports one by one.
	maxBatchErrors = 50
)

// Response is an executed operation.
type Response struct {
	// Data is a JSON object, or "null".
	Data   []byte
	Errors []*Error
	// Calls counts the backend calls made.
	Calls int
}

// valueKind is what a value of the response tree holds.
type valueKind uint8

const (
	vNull valueKind = iota
	vRaw
	vObject
	vList
)

// outNode is a node of the response being built: an object's field or a
// list's item. Paths are found through parent, so no path is copied until
// an error needs one.
type outNode struct {
	parent *outNode
	key    string // in an object: the response key
	index  int    // in a list: the index
	typ    *ast.Type
	field  *ast.Field // the selection it answers (locations, messages)
	kind   valueKind
	raw    []byte     // vRaw: a JSON scalar
	kids   []*outNode // vObject: its fields; vList: its items
	// failed: null with its error reported (no second error for a
	// non-null violation).
	failed bool
}

// collected is a response key's fields in a selection set (spec:
// CollectFields), with the merged sub-selections per object type, made
// once per execution however many objects share them.
type collected struct {
	key    string
	fields []*ast.Field
	def    *ast.FieldDefinition
	meta   *fieldMeta
	subs   map[string][]*collected
}

// executor runs one prepared operation.
type executor struct {
	ctx     context.Context
	s       *Schema
	p       *Prepared
	f       Fetcher
	allow   Authorizer
	errs    []*Error
	calls   int
	objects int
	// tasks are the relations of the level being resolved, in order.
	tasks   []*relTask
	taskIdx map[*collected]*relTask
	// members and slab hold the decoded objects and the response nodes,
	// allocated in blocks rather than one by one.
	members []jsonMember
	slab    []outNode
}

// Execute runs a prepared operation: root query fields in one Fetch, root
// mutation fields one after the other, relations one batched call per
// relation and level. It never panics on backend data; every call goes
// through f, after allow says yes.
func (s *Schema) Execute(ctx context.Context, p *Prepared, f Fetcher, allow Authorizer) (resp *Response) {
	e := &executor{ctx: ctx, s: s, p: p, f: f, allow: allow, taskIdx: map[*collected]*relTask{}}
	defer func() {
		if r := recover(); r != nil {
			resp = &Response{Data: []byte("null"), Errors: []*Error{{Message: "the operation failed inside the gateway", Code: contract.CodeInternal}}, Calls: e.calls}
		}
	}()
	// data is nullable: a null reaching it from a non-null root field is
	// "data": null (spec)
	root := &outNode{kind: vObject, typ: &ast.Type{NamedType: string(p.op.Operation)}}
	if p.op.Operation == ast.Mutation {
		e.mutation(root)
	} else {
		e.query(root)
	}
	if e.objects > maxObjects {
		return &Response{Data: []byte("null"), Errors: []*Error{{
			Message: "the response is too large: more than " + strconv.Itoa(maxObjects) + " objects; ask for smaller pages",
			Code:    contract.CodeBadRequest,
		}}, Calls: e.calls}
	}
	e.settle(root)
	out := &Response{Errors: e.errs, Calls: e.calls}
	out.Data = appendValue(make([]byte, 0, 1024), root)
	return out
}

// fetch makes calls through the Fetcher (one Fetch), tolerating a Fetcher
// that answers the wrong number of results.
func (e *executor) fetch(calls []Call) []Result {
	if len(calls) == 0 {
		return nil
	}
	if e.ctx.Err() != nil {
		// the request is gone (client left, deadline): no more calls
		res := make([]Result, len(calls))
		for i := range res {
			res[i].Err = &Error{Message: "the request ended before this backend call", Code: contract.CodeUpstreamTimeout}
		}
		return res
	}
	e.calls += len(calls)
	res := e.f.Fetch(e.ctx, calls)
	if len(res) != len(calls) {
		fixed := make([]Result, len(calls))
		copy(fixed, res)
		for i := len(res); i < len(calls); i++ {
			fixed[i] = Result{Err: &Error{Message: "the backend call gave no result", Code: contract.CodeUpstreamUnavailable}}
		}
		res = fixed
	}
	return res
}

// rootItem is a root field waiting for its call's result.
type rootItem struct {
	v     *outNode
	g     *collected
	first int // calls[first:first+n] are its calls
	n     int // 0: no call (refused or answered already)
	page  *pagePlan
}

func (e *executor) query(root *outNode) {
	def := e.s.ast.Query
	groups := e.collect(def, []ast.SelectionSet{e.p.op.SelectionSet})
	var calls []Call
	var items []*rootItem
	for _, g := range groups {
		v := e.child(root, g)
		switch {
		case g.fields[0].Name == "__typename":
			v.kind, v.raw = vRaw, jsonString(nil, def.Name)
			continue
		case g.fields[0].Name == "__schema" || g.fields[0].Name == "__type":
			e.introspect(v, g)
			continue
		case g.meta == nil:
			continue // not a root field the conventions know: null
		}
		if err := e.authorize(g.meta.backend, false); err != nil {
			e.fail(v, err)
			continue
		}
		it := &rootItem{v: v, g: g, first: len(calls)}
		switch g.meta.kind {
		case fieldItem:
			args := g.fields[0].ArgumentMap(e.p.vars)
			id, ok := idString(args["id"])
			if !ok {
				e.fail(v, &Error{Message: "id must be a string or a number", Code: contract.CodeBadRequest, Field: "id"})
				continue
			}
			calls = append(calls, Call{Backend: g.meta.backend, Op: OpItem, ID: id})
			it.n = 1
		case fieldConn:
			plan, q, err := e.connectionCalls(g)
			if err != nil {
				e.fail(v, err)
				continue
			}
			it.page = plan
			if plan.none {
				break // an empty `in`: nothing matches, no call
			}
			for _, pg := range plan.pages {
				cq := cloneQuery(q)
				cq.Set("page", strconv.Itoa(pg))
				cq.Set("limit", strconv.Itoa(plan.limit))
				calls = append(calls, Call{Backend: g.meta.backend, Op: OpList, Query: cq})
			}
			it.n = len(plan.pages)
		}
		items = append(items, it)
	}
	res := e.fetch(calls)
	for _, it := range items {
		switch it.g.meta.kind {
		case fieldItem:
			r := res[it.first]
			e.completeEntity(it.v, it.g, it.g.meta.entity, r, true)
		case fieldConn:
			e.completeRootConnection(it, res[it.first:it.first+it.n])
		}
	}
	e.runRelations()
}

func (e *executor) mutation(root *outNode) {
	def := e.s.ast.Mutation
	if def == nil {
		return
	}
	for _, g := range e.collect(def, []ast.SelectionSet{e.p.op.SelectionSet}) {
		v := e.child(root, g)
		if g.fields[0].Name == "__typename" {
			v.kind, v.raw = vRaw, jsonString(nil, def.Name)
			continue
		}
		if g.meta == nil {
			continue
		}
		if err := e.authorize(g.meta.backend, true); err != nil {
			e.fail(v, err)
			continue
		}
		args := g.fields[0].ArgumentMap(e.p.vars)
		call := Call{Backend: g.meta.backend}
		if g.meta.kind != fieldCreate {
			id, ok := idString(args["id"])
			if !ok {
				e.fail(v, &Error{Message: "id must be a string or a number", Code: contract.CodeBadRequest, Field: "id"})
				continue
			}
			call.ID = id
		}
		if g.meta.kind != fieldDelete {
			body, err := json.Marshal(args["input"])
			if err != nil {
				e.fail(v, &Error{Message: "input cannot be sent as JSON", Code: contract.CodeBadRequest, Field: "input"})
				continue
			}
			call.Body = body
		}
		switch g.meta.kind {
		case fieldCreate:
			call.Op = OpCreate
		case fieldUpdate:
			call.Op = OpUpdate
		case fieldDelete:
			call.Op = OpDelete
		}
		r := e.fetch([]Call{call})[0]
		if g.meta.kind == fieldDelete {
			if r.Err != nil {
				e.fail(v, r.Err)
				continue
			}
			v.kind = vRaw
			if g.def.Type.Name() == "ID" {
				v.raw = jsonString(nil, call.ID)
			} else {
				v.raw = []byte("true")
			}
			continue
		}
		e.completeEntity(v, g, g.meta.entity, r, false)
		// the field completes (its relations too) before the next mutation
		e.runRelations()
	}
}

// completeEntity fills v from an item call's result (item, create,
// update): NOT_FOUND becomes null with the error.
func (e *executor) completeEntity(v *outNode, g *collected, entity string, r Result, item bool) {
	if r.Err != nil {
		e.fail(v, r.Err)
		return
	}
	def := e.s.ast.Types[entity]
	if !isNull(r.Data) && !validJSON(r.Data) {
		e.fail(v, notA(g, entity))
		return
	}
	obj, ok := e.decodeObject(r.Data)
	if !ok {
		if item && isNull(r.Data) {
			e.fail(v, &Error{Message: entity + " not found", Code: contract.CodeNotFound})
			return
		}
		e.fail(v, notA(g, entity))
		return
	}
	e.object(v, def, e.sub(g, def), obj)
}

// introspect resolves __schema and __type through Introspect.
func (e *executor) introspect(v *outNode, g *collected) {
	raw, errs := Introspect(e.s.ast, g.fields[0], e.p.vars)
	for _, err := range errs {
		ce := *err
		ce.Path = append(e.path(v), err.Path...)
		if ce.Locations == nil {
			ce.Locations = locations(g.fields[0].Position)
		}
		e.errs = append(e.errs, &ce)
	}
	if len(raw) == 0 || isNull(raw) {
		v.failed = len(errs) > 0
		return
	}
	v.kind, v.raw = vRaw, raw
}

// authorize asks the Authorizer (nil: yes).
func (e *executor) authorize(backend string, write bool) *Error {
	if e.allow == nil {
		return nil
	}
	return e.allow(backend, write)
}

// child adds the value of group g to object v.
func (e *executor) child(v *outNode, g *collected) *outNode {
	c := e.node()
	*c = outNode{parent: v, key: g.key, typ: g.def.Type, field: g.fields[0]}
	v.kids = append(v.kids, c)
	return c
}

// fail makes v null with err at its path.
func (e *executor) fail(v *outNode, err *Error) {
	ce := *err
	ce.Path = e.path(v)
	if v.field != nil && ce.Locations == nil {
		ce.Locations = locations(v.field.Position)
	}
	e.errs = append(e.errs, &ce)
	v.kind, v.failed = vNull, true
}

// failBatch makes every value of a failed batch null, reporting the first
// maxBatchErrors paths one by one and the rest in one more error.
func (e *executor) failBatch(vs []*outNode, err *Error) {
	for i, v := range vs {
		if i < maxBatchErrors {
			e.fail(v, err)
			continue
		}
		v.kind, v.failed = vNull, true
	}
	if n := len(vs) - maxBatchErrors; n > 0 {
		ce := *err
		ce.Message = err.Message + " (and at " + strconv.Itoa(n) + " more paths, left out)"
		ce.Locations = locations(vs[0].field.Position)
		e.errs = append(e.errs, &ce)
	}
}

// path is v's response path.
func (e *executor) path(v *outNode) []any {
	n := 0
	for c := v; c.parent != nil; c = c.parent {
		n++
	}
	p := make([]any, n)
	for c := v; c.parent != nil; c = c.parent {
		n--
		if c.parent.kind == vList {
			p[n] = c.index
		} else {
			p[n] = c.key
		}
	}
	return p
}

// notA is the error of a backend value that does not fit its type.
func notA(g *collected, typ string) *Error {
	name := g.fields[0].Name
	if g.fields[0].ObjectDefinition != nil {
		name = g.fields[0].ObjectDefinition.Name + "." + name
	}
	return &Error{Message: "the backend's value of " + name + " is not a " + typ, Code: contract.CodeUpstreamUnavailable}
}

// collect groups a selection set's fields by response key for an object
// type (spec CollectFields): @skip/@include, fragments and inline
// fragments with their type conditions.
func (e *executor) collect(def *ast.Definition, sets []ast.SelectionSet) []*collected {
	var out []*collected
	idx := map[string]*collected{}
	visited := map[string]bool{}
	var visit func(set ast.SelectionSet)
	visit = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				if !e.included(sel.Directives) {
					continue
				}
				key := sel.Alias
				if key == "" {
					key = sel.Name
				}
				if g := idx[key]; g != nil {
					g.fields = append(g.fields, sel)
					continue
				}
				g := &collected{key: key, fields: []*ast.Field{sel}, def: sel.Definition, meta: e.s.meta[sel.Definition]}
				idx[key] = g
				out = append(out, g)
			case *ast.InlineFragment:
				if !e.included(sel.Directives) || (sel.TypeCondition != "" && sel.TypeCondition != def.Name) {
					continue
				}
				visit(sel.SelectionSet)
			case *ast.FragmentSpread:
				if !e.included(sel.Directives) || visited[sel.Name] {
					continue
				}
				visited[sel.Name] = true
				fd := e.p.doc.Fragments.ForName(sel.Name)
				if fd == nil || fd.TypeCondition != def.Name {
					continue
				}
				visit(fd.SelectionSet)
			}
		}
	}
	for _, set := range sets {
		visit(set)
	}
	return out
}

// sub is the merged selection of g's fields on object type def, collected
// once.
func (e *executor) sub(g *collected, def *ast.Definition) []*collected {
	if c, ok := g.subs[def.Name]; ok {
		return c
	}
	sets := make([]ast.SelectionSet, len(g.fields))
	for i, f := range g.fields {
		sets[i] = f.SelectionSet
	}
	c := e.collect(def, sets)
	if g.subs == nil {
		g.subs = map[string][]*collected{}
	}
	g.subs[def.Name] = c
	return c
}

// included evaluates @skip and @include.
func (e *executor) included(dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		a := d.Arguments.ForName("if")
		if a == nil {
			continue
		}
		var on bool
		if a.Value.Kind == ast.Variable {
			on, _ = e.p.vars[a.Value.Raw].(bool)
		} else {
			on = a.Value.Raw == "true"
		}
		if (d.Name == "skip") == on {
			return false
		}
	}
	return true
}

// object fills v as an object of type def from the backend's JSON.
func (e *executor) object(v *outNode, def *ast.Definition, groups []*collected, src jsonObject) {
	e.objects++
	if e.objects > maxObjects {
		return
	}
	v.kind = vObject
	v.kids = make([]*outNode, 0, len(groups))
	for _, g := range groups {
		c := e.child(v, g)
		if g.fields[0].Name == "__typename" {
			c.kind, c.raw = vRaw, jsonString(nil, def.Name)
			continue
		}
		if g.meta != nil && g.meta.kind == fieldJoin {
			e.addRelation(c, g, src)
			continue
		}
		e.complete(c, g, g.def.Type, src.get(g.fields[0].Name))
	}
}

// complete fills v (of type t) from a JSON value: scalars coerced, lists
// item by item, value objects from the JSON object.
func (e *executor) complete(v *outNode, g *collected, t *ast.Type, raw json.RawMessage) {
	if isNull(raw) {
		return // null; a non-null violation is settled later
	}
	if t.Elem != nil {
		items, ok := splitArray(raw)
		if !ok {
			e.fail(v, notA(g, "list"))
			return
		}
		v.kind = vList
		v.kids = make([]*outNode, len(items))
		for i, item := range items {
			c := e.node()
			*c = outNode{parent: v, index: i, typ: t.Elem, field: v.field}
			v.kids[i] = c
			e.complete(c, g, t.Elem, item)
		}
		return
	}
	def := e.s.ast.Types[t.NamedType]
	if def.Kind == ast.Object {
		obj, ok := e.decodeObject(raw)
		if !ok {
			e.fail(v, notA(g, def.Name))
			return
		}
		e.object(v, def, e.sub(g, def), obj)
		return
	}
	out, ok := coerceScalar(def, raw)
	if !ok {
		e.fail(v, notA(g, def.Name))
		return
	}
	v.kind, v.raw = vRaw, out
}

// coerceScalar coerces a backend's JSON scalar to a leaf type.
func coerceScalar(def *ast.Definition, raw json.RawMessage) ([]byte, bool) {
	c := raw[0]
	isNum := c == '-' || (c >= '0' && c <= '9')
	switch def.Name {
	case "ID", "String":
		switch {
		case c == '"' && utf8.Valid(raw):
			return raw, true
		case c == '"':
			s, ok := unquote(raw) // invalid UTF-8 replaced: the answer stays UTF-8
			return jsonString(nil, string(s)), ok
		case isNum:
			return jsonString(nil, string(raw)), true
		}
	case "Int":
		if !isNum {
			return nil, false
		}
		if n, err := strconv.ParseInt(string(raw), 10, 32); err == nil {
			return strconv.AppendInt(nil, n, 10), true
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err == nil && f == float64(int32(f)) {
			return strconv.AppendInt(nil, int64(f), 10), true
		}
	case "Float":
		if isNum {
			return raw, true
		}
	case "Boolean":
		if string(raw) == "true" || string(raw) == "false" {
			return raw, true
		}
	default:
		if def.Kind == ast.Enum {
			var s string
			if c == '"' && json.Unmarshal(raw, &s) == nil && def.EnumValues.ForName(s) != nil {
				return raw, true
			}
			return nil, false
		}
		return raw, true // a custom scalar: the backend's JSON as is
	}
	return nil, false
}

// settle applies non-null: a null where the type says non-null makes the
// parent null, up to the nearest nullable one (spec), with one error at
// the field that was null. It reports whether v is null.
func (e *executor) settle(v *outNode) bool {
	switch v.kind {
	case vObject:
		for _, c := range v.kids {
			if e.settle(c) && c.typ.NonNull {
				e.nonNull(c)
				v.kind, v.failed, v.kids = vNull, true, nil
				return true
			}
		}
	case vList:
		for _, c := range v.kids {
			if e.settle(c) && c.typ.NonNull {
				e.nonNull(c)
				v.kind, v.failed, v.kids = vNull, true, nil
				return true
			}
		}
	}
	return v.kind == vNull
}

// nonNull reports a non-null field that is null without an error yet.
func (e *executor) nonNull(v *outNode) {
	if v.failed {
		return
	}
	name := v.field.Name
	if v.field.ObjectDefinition != nil {
		name = v.field.ObjectDefinition.Name + "." + name
	}
	e.fail(v, &Error{Message: "the backend gave no value for " + name, Code: contract.CodeUpstreamUnavailable})
}

// appendValue writes the response tree as JSON.
func appendValue(dst []byte, v *outNode) []byte {
	switch v.kind {
	case vRaw:
		return append(dst, v.raw...)
	case vObject:
		dst = append(dst, '{')
		for i, c := range v.kids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonString(dst, c.key)
			dst = append(dst, ':')
			dst = appendValue(dst, c)
		}
		return append(dst, '}')
	case vList:
		dst = append(dst, '[')
		for i, c := range v.kids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, c)
		}
		return append(dst, ']')
	}
	return append(dst, "null"...)
}

// isNull says whether a JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// decodeObject reads a JSON object's members (of checked JSON: see
// jsonscan.go) into the execution's member buffer.
func (e *executor) decodeObject(raw json.RawMessage) (jsonObject, bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var obj jsonObject
	var ok bool
	e.members, obj, ok = splitObject(e.members, raw)
	return obj, ok
}

// node allocates a response node from the execution's slab.
func (e *executor) node() *outNode {
	if len(e.slab) == cap(e.slab) {
		// blocks grow with the response: small answers stay small
		e.slab = make([]outNode, 0, min(max(2*cap(e.slab), 16), 512))
	}
	e.slab = e.slab[:len(e.slab)+1]
	return &e.slab[len(e.slab)-1]
}

// idString is an id argument as the backend's path takes it.
func idString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case int:
		return strconv.Itoa(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// Cursors are opaque to clients: base64url of "o:<offset>".
func cursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

// maxOffset bounds a cursor's offset.
const maxOffset = 1 << 30

func decodeCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "o:") {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 || n >= maxOffset || strconv.Itoa(n) != string(b[2:]) {
		return 0, false
	}
	return n, true
}
