package graphql

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// MaxIntrospectionBytes bounds the JSON one introspection field may answer.
// The full IntrospectionQuery over a schema of a few hundred types answers
// well under a megabyte, but a document that nests possibleTypes and
// interfaces (or aliases one field many times through fragments) grows with
// the schema's fan-out to the power of its depth; past this size Introspect
// stops and answers null with one PAYLOAD_TOO_LARGE error instead of
// holding the process's memory.
const MaxIntrospectionBytes = 16 << 20

// Introspect resolves one introspection root field (`__schema`, or
// `__type(name: String!)`) of a validated operation: the JSON value of the
// field for its selection set. field comes from gqlparser's validated
// document (Definition set; fragment spreads have .Definition; variables in
// vars are already coerced). Error paths are relative to the field's
// response key (start with field.Alias).
//
// The answer follows the GraphQL spec (October 2021, §4.5) and its later
// additions gqlparser's prelude declares: __Type.specifiedByURL and isOneOf,
// __Directive.isRepeatable, includeDeprecated on fields, args, inputFields
// and enumValues. Fields are collected per the spec's CollectFields (output
// keys in selection order, aliases, fields of one response key merged,
// fragments applied by type condition, @skip and @include read with vars).
// types and directives are sorted by name, since gqlparser keeps them in
// maps; fields, arguments, enum values, interfaces and possible types keep
// the schema's order. Fields whose names start with "__" (the implicit
// __schema and __type of the query type) are not listed, as the spec says.
//
// A value that cannot be resolved (a type a reference names that the schema
// lacks, a field of the prelude this resolver does not know) is null with an
// INTERNAL error at its path, propagated to the nearest nullable parent; when
// the whole value would be null the answer is the JSON null.
func Introspect(schema *ast.Schema, field *ast.Field, vars map[string]any) (json.RawMessage, []*Error) {
	return introspect(schema, field, vars, MaxIntrospectionBytes)
}

// introspect is Introspect with the answer's size bound as a parameter.
func introspect(schema *ast.Schema, field *ast.Field, vars map[string]any, limit int) (json.RawMessage, []*Error) {
	in := &introspector{
		schema: schema,
		vars:   vars,
		limit:  limit,
		buf:    make([]byte, 0, 16<<10),
	}
	root := &group{key: field.Alias, fields: []*ast.Field{field}}
	in.frames = append(in.frames, frame{key: root.key, index: -1})
	var ok bool
	switch field.Name {
	case "__schema":
		ok = in.object(root, "__Schema", introValue{})
	case "__type":
		ok = in.typeByName(root)
	default:
		in.fail(root, contract.CodeInternal, "not an introspection field: "+field.Name)
	}
	if in.over {
		// The whole field is null, whichever value passed the bound.
		in.overErr.Path = []any{root.key}
		if field.Position != nil {
			in.overErr.Locations = []Location{{Line: field.Position.Line, Column: field.Position.Column}}
		}
		return json.RawMessage("null"), []*Error{in.overErr}
	}
	if !ok {
		return json.RawMessage("null"), in.errs
	}
	return json.RawMessage(in.buf), in.errs
}

// introspector holds one Introspect call's state: the answer being
// appended, the errors so far and the path of the value being written.
type introspector struct {
	schema *ast.Schema
	vars   map[string]any
	limit  int // the answer's size bound in bytes
	buf    []byte
	errs   []*Error
	// frames is the path of the value being written, turned into an
	// Error's Path only when an error happens, so that writing allocates
	// nothing per field.
	frames []frame
	// over is set once buf passed limit: every writer then
	// fails at once and Introspect answers null with overErr alone.
	over    bool
	overErr *Error
}

// frame is one step of a path: a response key, or a list index (>= 0).
type frame struct {
	key   string
	index int
}

// group is the fields of one response key in a selection set, merged as
// CollectFields merges them; the first field's name, arguments and
// definition answer for all (validation made them agree). Its sub-selection
// is collected once per Introspect call and reused for every object the
// field resolves to (each type in `types`, each field of each type).
type group struct {
	key    string
	fields []*ast.Field

	collected bool
	subType   string
	sub       []*group

	// includeDeprecated, read once from the arguments.
	incDepRead bool
	incDep     bool
}

// introValue is the introspection object being written: which of its fields is
// set depends on the introspection type (__Schema needs none).
type introValue struct {
	typ   typeRef                  // __Type
	field *ast.FieldDefinition     // __Field, or an input object's field as __InputValue
	arg   *ast.ArgumentDefinition  // __InputValue of an argument
	enum  *ast.EnumValueDefinition // __EnumValue
	dir   *ast.DirectiveDefinition // __Directive
}

// typeRef is a __Type: a named type (def), or a LIST or NON_NULL wrapper
// of t. nullable means t's own NonNull is already unwrapped (t is the
// ofType of a NON_NULL).
type typeRef struct {
	def      *ast.Definition
	t        *ast.Type
	nullable bool
}

func (r typeRef) kind() string {
	switch {
	case r.def != nil:
		return string(r.def.Kind)
	case r.t.NonNull && !r.nullable:
		return "NON_NULL"
	default:
		return "LIST"
	}
}

// ref makes the __Type of a type reference; false when it names a type the
// schema lacks.
func (in *introspector) ref(t *ast.Type, nullable bool) (typeRef, bool) {
	if t == nil {
		return typeRef{}, false
	}
	if (t.NonNull && !nullable) || t.Elem != nil {
		return typeRef{t: t, nullable: nullable}, true
	}
	def := in.schema.Types[t.NamedType]
	return typeRef{def: def}, def != nil
}

// path turns the frames into an Error's Path.
func (in *introspector) path() []any {
	p := make([]any, len(in.frames))
	for i, f := range in.frames {
		if f.index >= 0 {
			p[i] = f.index
		} else {
			p[i] = f.key
		}
	}
	return p
}

// fail records an error at the current path, located at g's fields.
func (in *introspector) fail(g *group, code, message string) {
	e := &Error{Message: message, Path: in.path(), Code: code}
	for _, f := range g.fields {
		if f.Position != nil {
			e.Locations = append(e.Locations, Location{Line: f.Position.Line, Column: f.Position.Column})
		}
	}
	in.errs = append(in.errs, e)
}

// full reports whether the answer passed its size bound, recording the
// error the first time.
func (in *introspector) full() bool {
	if in.over {
		return true
	}
	if len(in.buf) <= in.limit {
		return false
	}
	in.over = true
	in.overErr = &Error{
		Message: "introspection answer larger than " + strconv.Itoa(in.limit) + " bytes",
		Code:    contract.CodePayloadTooLarge,
		Context: map[string]any{"limit": in.limit},
	}
	return true
}

// typeByName writes `__type(name:)`: the named type, or null when the schema
// has none of that name.
func (in *introspector) typeByName(g *group) bool {
	f := g.fields[0]
	var name any
	if a := f.Arguments.ForName("name"); a != nil {
		name = in.literal(a.Value)
	}
	s, isString := name.(string)
	if !isString {
		in.fail(g, contract.CodeBadRequest, "__type needs a String name")
		return false
	}
	def := in.schema.Types[s]
	if def == nil {
		in.buf = append(in.buf, "null"...)
		return true
	}
	return in.object(g, "__Type", introValue{typ: typeRef{def: def}})
}

// object writes v, of the introspection type typ, for g's sub-selection. On
// false it wrote nothing: the value is null because a non-null field of it
// is.
func (in *introspector) object(g *group, typ string, v introValue) bool {
	if in.full() {
		return false
	}
	start := len(in.buf)
	in.buf = append(in.buf, '{')
	for i, c := range in.collect(g, typ) {
		if i > 0 {
			in.buf = append(in.buf, ',')
		}
		in.buf = envelope.AppendString(in.buf, c.key)
		in.buf = append(in.buf, ':')
		in.frames = append(in.frames, frame{key: c.key, index: -1})
		at := len(in.buf)
		ok := in.resolve(c, typ, &v)
		in.frames = in.frames[:len(in.frames)-1]
		if !ok {
			in.buf = in.buf[:at] // a list's elements written before one failed
			if d := c.fields[0].Definition; d != nil && d.Type.NonNull {
				in.buf = in.buf[:start]
				return false
			}
			in.buf = append(in.buf, "null"...)
		}
	}
	in.buf = append(in.buf, '}')
	return true
}

// resolve writes field c of v (of type typ); false means null with an error
// already recorded (or the answer being full), and what it wrote is to be
// dropped.
func (in *introspector) resolve(c *group, typ string, v *introValue) bool {
	name := c.fields[0].Name
	if name == "__typename" {
		in.buf = envelope.AppendString(in.buf, typ)
		return true
	}
	switch typ {
	case "__Schema":
		return in.resolveSchema(c, name)
	case "__Type":
		return in.resolveType(c, name, v.typ)
	case "__Field":
		return in.resolveField(c, name, v.field)
	case "__InputValue":
		return in.resolveInputValue(c, name, v)
	case "__EnumValue":
		return in.resolveEnumValue(c, name, v.enum)
	case "__Directive":
		return in.resolveDirective(c, name, v.dir)
	}
	return in.unknown(c, typ, name)
}

func (in *introspector) unknown(c *group, typ, name string) bool {
	in.fail(c, contract.CodeInternal, "introspection has no field "+typ+"."+name)
	return false
}

func (in *introspector) resolveSchema(c *group, name string) bool {
	s := in.schema
	switch name {
	case "description":
		in.nullableString(s.Description)
	case "types":
		names := make([]string, 0, len(s.Types))
		for n := range s.Types {
			names = append(names, n)
		}
		slices.Sort(names)
		in.buf = append(in.buf, '[')
		for i, n := range names {
			if !in.element(c, i, "__Type", introValue{typ: typeRef{def: s.Types[n]}}) {
				return false
			}
		}
		in.buf = append(in.buf, ']')
	case "queryType":
		return in.named(c, s.Query)
	case "mutationType":
		return in.named(c, s.Mutation)
	case "subscriptionType":
		return in.named(c, s.Subscription)
	case "directives":
		names := make([]string, 0, len(s.Directives))
		for n := range s.Directives {
			names = append(names, n)
		}
		slices.Sort(names)
		in.buf = append(in.buf, '[')
		for i, n := range names {
			if !in.element(c, i, "__Directive", introValue{dir: s.Directives[n]}) {
				return false
			}
		}
		in.buf = append(in.buf, ']')
	default:
		return in.unknown(c, "__Schema", name)
	}
	return true
}

// named writes a root operation type, null when the schema has none.
func (in *introspector) named(c *group, def *ast.Definition) bool {
	if def == nil {
		in.buf = append(in.buf, "null"...)
		return true
	}
	return in.object(c, "__Type", introValue{typ: typeRef{def: def}})
}

// element writes the i-th element of list field c (whose '[' is written):
// the elements of every introspection list are non-null, so one that fails
// fails the list; the caller then returns false and object drops the list.
func (in *introspector) element(c *group, i int, typ string, v introValue) bool {
	if i > 0 {
		in.buf = append(in.buf, ',')
	}
	in.frames = append(in.frames, frame{index: i})
	ok := in.object(c, typ, v)
	in.frames = in.frames[:len(in.frames)-1]
	return ok
}

func (in *introspector) resolveType(c *group, name string, r typeRef) bool {
	def := r.def
	switch name {
	case "kind":
		in.buf = envelope.AppendString(in.buf, r.kind())
	case "name":
		if def == nil {
			in.buf = append(in.buf, "null"...)
		} else {
			in.buf = envelope.AppendString(in.buf, def.Name)
		}
	case "description":
		if def == nil {
			in.buf = append(in.buf, "null"...)
		} else {
			in.nullableString(def.Description)
		}
	case "specifiedByURL":
		url, ok := "", false
		if def != nil && def.Kind == ast.Scalar {
			if d := def.Directives.ForName("specifiedBy"); d != nil {
				if a := d.Arguments.ForName("url"); a != nil && a.Value != nil {
					url, ok = a.Value.Raw, true
				}
			}
		}
		if ok {
			in.buf = envelope.AppendString(in.buf, url)
		} else {
			in.buf = append(in.buf, "null"...)
		}
	case "fields":
		if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface) {
			in.buf = append(in.buf, "null"...)
			return true
		}
		inc, ok := in.includeDeprecated(c)
		if !ok {
			return false
		}
		in.buf = append(in.buf, '[')
		i := 0
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") || (!inc && deprecated(f.Directives)) {
				continue
			}
			if !in.element(c, i, "__Field", introValue{field: f}) {
				return false
			}
			i++
		}
		in.buf = append(in.buf, ']')
	case "interfaces":
		if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface) {
			in.buf = append(in.buf, "null"...)
			return true
		}
		in.buf = append(in.buf, '[')
		for i, n := range def.Interfaces {
			iface := in.schema.Types[n]
			if iface == nil {
				in.fail(c, contract.CodeInternal, "the schema has no type "+n)
				return false
			}
			if !in.element(c, i, "__Type", introValue{typ: typeRef{def: iface}}) {
				return false
			}
		}
		in.buf = append(in.buf, ']')
	case "possibleTypes":
		if def == nil || (def.Kind != ast.Interface && def.Kind != ast.Union) {
			in.buf = append(in.buf, "null"...)
			return true
		}
		in.buf = append(in.buf, '[')
		i := 0
		for _, p := range in.schema.GetPossibleTypes(def) {
			// gqlparser lists the interfaces implementing an interface
			// among its possible types; the spec's possibleTypes are the
			// object types only.
			if p == nil || p.Kind != ast.Object {
				continue
			}
			if !in.element(c, i, "__Type", introValue{typ: typeRef{def: p}}) {
				return false
			}
			i++
		}
		in.buf = append(in.buf, ']')
	case "enumValues":
		if def == nil || def.Kind != ast.Enum {
			in.buf = append(in.buf, "null"...)
			return true
		}
		inc, ok := in.includeDeprecated(c)
		if !ok {
			return false
		}
		in.buf = append(in.buf, '[')
		i := 0
		for _, e := range def.EnumValues {
			if !inc && deprecated(e.Directives) {
				continue
			}
			if !in.element(c, i, "__EnumValue", introValue{enum: e}) {
				return false
			}
			i++
		}
		in.buf = append(in.buf, ']')
	case "inputFields":
		if def == nil || def.Kind != ast.InputObject {
			in.buf = append(in.buf, "null"...)
			return true
		}
		inc, ok := in.includeDeprecated(c)
		if !ok {
			return false
		}
		in.buf = append(in.buf, '[')
		i := 0
		for _, f := range def.Fields {
			if !inc && deprecated(f.Directives) {
				continue
			}
			if !in.element(c, i, "__InputValue", introValue{field: f}) {
				return false
			}
			i++
		}
		in.buf = append(in.buf, ']')
	case "ofType":
		if def != nil {
			in.buf = append(in.buf, "null"...)
			return true
		}
		var of typeRef
		var ok bool
		if r.t.NonNull && !r.nullable {
			of, ok = in.ref(r.t, true)
		} else {
			of, ok = in.ref(r.t.Elem, false)
		}
		if !ok {
			in.fail(c, contract.CodeInternal, "the schema has no type "+r.t.Name())
			return false
		}
		return in.object(c, "__Type", introValue{typ: of})
	case "isOneOf":
		if def == nil || def.Kind != ast.InputObject {
			in.buf = append(in.buf, "null"...)
		} else {
			in.buf = strconv.AppendBool(in.buf, def.Directives.ForName("oneOf") != nil)
		}
	default:
		return in.unknown(c, "__Type", name)
	}
	return true
}

func (in *introspector) resolveField(c *group, name string, f *ast.FieldDefinition) bool {
	switch name {
	case "name":
		in.buf = envelope.AppendString(in.buf, f.Name)
	case "description":
		in.nullableString(f.Description)
	case "args":
		return in.args(c, f.Arguments)
	case "type":
		return in.typeOf(c, f.Type)
	case "isDeprecated":
		in.buf = strconv.AppendBool(in.buf, deprecated(f.Directives))
	case "deprecationReason":
		in.deprecationReason(f.Directives)
	default:
		return in.unknown(c, "__Field", name)
	}
	return true
}

// args writes the arguments of a field or directive as __InputValues.
func (in *introspector) args(c *group, args ast.ArgumentDefinitionList) bool {
	inc, ok := in.includeDeprecated(c)
	if !ok {
		return false
	}
	in.buf = append(in.buf, '[')
	i := 0
	for _, a := range args {
		if !inc && deprecated(a.Directives) {
			continue
		}
		if !in.element(c, i, "__InputValue", introValue{arg: a}) {
			return false
		}
		i++
	}
	in.buf = append(in.buf, ']')
	return true
}

// typeOf writes the __Type of a type reference.
func (in *introspector) typeOf(c *group, t *ast.Type) bool {
	r, ok := in.ref(t, false)
	if !ok {
		n := "<none>"
		if t != nil {
			n = t.Name()
		}
		in.fail(c, contract.CodeInternal, "the schema has no type "+n)
		return false
	}
	return in.object(c, "__Type", introValue{typ: r})
}

// resolveInputValue answers an argument (v.arg) or an input object's field
// (v.field): both are __InputValues.
func (in *introspector) resolveInputValue(c *group, name string, v *introValue) bool {
	var (
		n, desc string
		t       *ast.Type
		def     *ast.Value
		dirs    ast.DirectiveList
	)
	if v.arg != nil {
		n, desc, t, def, dirs = v.arg.Name, v.arg.Description, v.arg.Type, v.arg.DefaultValue, v.arg.Directives
	} else {
		n, desc, t, def, dirs = v.field.Name, v.field.Description, v.field.Type, v.field.DefaultValue, v.field.Directives
	}
	switch name {
	case "name":
		in.buf = envelope.AppendString(in.buf, n)
	case "description":
		in.nullableString(desc)
	case "type":
		return in.typeOf(c, t)
	case "defaultValue":
		if def == nil {
			in.buf = append(in.buf, "null"...)
		} else {
			// The literal is printed at the buffer's end, then replaced
			// by itself as a JSON string.
			at := len(in.buf)
			in.buf = appendLiteral(in.buf, def)
			lit := string(in.buf[at:])
			in.buf = envelope.AppendString(in.buf[:at], lit)
		}
	case "isDeprecated":
		in.buf = strconv.AppendBool(in.buf, deprecated(dirs))
	case "deprecationReason":
		in.deprecationReason(dirs)
	default:
		return in.unknown(c, "__InputValue", name)
	}
	return true
}

func (in *introspector) resolveEnumValue(c *group, name string, e *ast.EnumValueDefinition) bool {
	switch name {
	case "name":
		in.buf = envelope.AppendString(in.buf, e.Name)
	case "description":
		in.nullableString(e.Description)
	case "isDeprecated":
		in.buf = strconv.AppendBool(in.buf, deprecated(e.Directives))
	case "deprecationReason":
		in.deprecationReason(e.Directives)
	default:
		return in.unknown(c, "__EnumValue", name)
	}
	return true
}

func (in *introspector) resolveDirective(c *group, name string, d *ast.DirectiveDefinition) bool {
	switch name {
	case "name":
		in.buf = envelope.AppendString(in.buf, d.Name)
	case "description":
		in.nullableString(d.Description)
	case "isRepeatable":
		in.buf = strconv.AppendBool(in.buf, d.IsRepeatable)
	case "locations":
		in.buf = append(in.buf, '[')
		for i, l := range d.Locations {
			if i > 0 {
				in.buf = append(in.buf, ',')
			}
			in.buf = envelope.AppendString(in.buf, string(l))
		}
		in.buf = append(in.buf, ']')
	case "args":
		return in.args(c, d.Arguments)
	default:
		return in.unknown(c, "__Directive", name)
	}
	return true
}

// nullableString writes s, or null when it is empty (gqlparser does not
// tell an absent description from an empty one).
func (in *introspector) nullableString(s string) {
	if s == "" {
		in.buf = append(in.buf, "null"...)
		return
	}
	in.buf = envelope.AppendString(in.buf, s)
}

func deprecated(dirs ast.DirectiveList) bool {
	return dirs.ForName("deprecated") != nil
}

// deprecationReason writes @deprecated's reason: the argument given, else
// the directive's declared default; null when not deprecated or given null.
func (in *introspector) deprecationReason(dirs ast.DirectiveList) {
	d := dirs.ForName("deprecated")
	if d == nil {
		in.buf = append(in.buf, "null"...)
		return
	}
	var reason *ast.Value
	if a := d.Arguments.ForName("reason"); a != nil {
		reason = a.Value
	} else if def := in.schema.Directives["deprecated"]; def != nil {
		if a := def.Arguments.ForName("reason"); a != nil {
			reason = a.DefaultValue
		}
	}
	switch {
	case reason == nil:
		in.buf = envelope.AppendString(in.buf, "No longer supported")
	case reason.Kind == ast.StringValue || reason.Kind == ast.BlockValue:
		in.buf = envelope.AppendString(in.buf, reason.Raw)
	default: // null
		in.buf = append(in.buf, "null"...)
	}
}

// includeDeprecated reads c's includeDeprecated argument (default false),
// once per group.
func (in *introspector) includeDeprecated(c *group) (bool, bool) {
	if !c.incDepRead {
		c.incDepRead = true
		c.incDep = false
		if a := c.fields[0].Arguments.ForName("includeDeprecated"); a != nil {
			switch v := in.literal(a.Value).(type) {
			case bool:
				c.incDep = v
			case nil: // null or an unset variable: the default
			default:
				in.fail(c, contract.CodeBadRequest, "includeDeprecated needs a Boolean")
				return false, false
			}
		}
	}
	return c.incDep, true
}

// literal is an argument's value with vars: the variable's value (or its
// declared default), a Boolean, String or null literal; nil for anything
// else, which validation keeps from the arguments read here.
func (in *introspector) literal(v *ast.Value) any {
	if v == nil {
		return nil
	}
	switch v.Kind {
	case ast.Variable:
		if x, ok := in.vars[v.Raw]; ok {
			return x
		}
		if v.VariableDefinition != nil && v.VariableDefinition.DefaultValue != nil {
			return in.literal(v.VariableDefinition.DefaultValue)
		}
		return nil
	case ast.BooleanValue:
		return v.Raw == "true"
	case ast.StringValue, ast.BlockValue:
		return v.Raw
	}
	return nil
}

// collect is CollectFields for g's sub-selection on objects of type typ:
// the merged fields of every selection set of g, by response key in the
// order first seen. Skipped and non-applying selections are left out. The
// result is kept on g: every introspection field has one static type, so it
// holds for every object g resolves to.
func (in *introspector) collect(g *group, typ string) []*group {
	if g.collected && g.subType == typ {
		return g.sub
	}
	var sub []*group
	var visited []string
	for _, f := range g.fields {
		sub, visited = in.collectSet(g, typ, f.SelectionSet, sub, visited)
	}
	g.collected, g.subType, g.sub = true, typ, sub
	return sub
}

func (in *introspector) collectSet(g *group, typ string, set ast.SelectionSet, sub []*group, visited []string) ([]*group, []string) {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if !in.included(g, s.Directives) {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			var into *group
			for _, c := range sub {
				if c.key == key {
					into = c
					break
				}
			}
			if into == nil {
				sub = append(sub, &group{key: key, fields: []*ast.Field{s}})
			} else {
				into.fields = append(into.fields, s)
			}
		case *ast.FragmentSpread:
			if !in.included(g, s.Directives) || slices.Contains(visited, s.Name) {
				continue
			}
			visited = append(visited, s.Name)
			if s.Definition == nil {
				in.fail(g, contract.CodeInternal, "fragment "+s.Name+" is not resolved")
				continue
			}
			if !in.applies(s.Definition.TypeCondition, typ) {
				continue
			}
			sub, visited = in.collectSet(g, typ, s.Definition.SelectionSet, sub, visited)
		case *ast.InlineFragment:
			if !in.included(g, s.Directives) || !in.applies(s.TypeCondition, typ) {
				continue
			}
			sub, visited = in.collectSet(g, typ, s.SelectionSet, sub, visited)
		}
	}
	return sub, visited
}

// applies reports whether a fragment with type condition cond applies to an
// object of type typ.
func (in *introspector) applies(cond, typ string) bool {
	if cond == "" || cond == typ {
		return true
	}
	for _, p := range in.schema.PossibleTypes[cond] {
		if p.Name == typ {
			return true
		}
	}
	return false
}

// included evaluates @skip(if:) and @include(if:) with vars. A condition
// that is not a Boolean (validation and variable coercion rule it out) is
// an error, and the selection is left out.
func (in *introspector) included(g *group, dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		var cond any
		if a := d.Arguments.ForName("if"); a != nil {
			cond = in.literal(a.Value)
		}
		b, ok := cond.(bool)
		if !ok {
			in.fail(g, contract.CodeBadRequest, "@"+d.Name+" needs a Boolean if")
			return false
		}
		if b == (d.Name == "skip") {
			return false
		}
	}
	return true
}

// appendLiteral appends v as GraphQL literal text, spaced as graphql-js
// prints it: [1, 2], {a: 1, b: "x"}, enum values bare.
func appendLiteral(dst []byte, v *ast.Value) []byte {
	switch v.Kind {
	case ast.Variable:
		return append(append(dst, '$'), v.Raw...)
	case ast.StringValue, ast.BlockValue:
		return appendGraphQLString(dst, v.Raw)
	case ast.ListValue:
		dst = append(dst, '[')
		for i, c := range v.Children {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendLiteral(dst, c.Value)
		}
		return append(dst, ']')
	case ast.ObjectValue:
		dst = append(dst, '{')
		for i, c := range v.Children {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(append(dst, c.Name...), ": "...)
			dst = appendLiteral(dst, c.Value)
		}
		return append(dst, '}')
	case ast.NullValue:
		return append(dst, "null"...)
	default: // Int, Float, Boolean, Enum: their source text
		return append(dst, v.Raw...)
	}
}

// appendGraphQLString appends s as a GraphQL string literal: quote,
// backslash and control characters (C0, DEL and C1) escaped, the rest
// verbatim.
func appendGraphQLString(dst []byte, s string) []byte {
	const hexUpper = "0123456789ABCDEF"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			dst = append(dst, '\\', 'u', '0', '0', hexUpper[r>>4], hexUpper[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
