package graphql

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// baseSDL is what every source may use (the package doc's base). Query and
// Mutation are built by Compose from the sources' extensions.
const baseSDL = `
"Where a connection's page sits in the whole list."
type PageInfo { hasNextPage: Boolean!, hasPreviousPage: Boolean!, startCursor: String, endCursor: String }
"A relation: the objects whose field to equals the parent's field from."
directive @join(from: String!, to: String! = "id") on FIELD_DEFINITION
"A mutation that creates an entity (POST)."
directive @create on FIELD_DEFINITION
"A mutation that changes an entity (PATCH)."
directive @update on FIELD_DEFINITION
"A mutation that deletes an entity (DELETE)."
directive @delete on FIELD_DEFINITION
`

// fieldKind is what resolving a field does.
type fieldKind uint8

const (
	fieldPlain  fieldKind = iota // read from the parent's JSON
	fieldItem                    // root: one item call
	fieldConn                    // root: one list call, a connection
	fieldJoin                    // relation: batched list calls per level
	fieldCreate                  // mutation: POST
	fieldUpdate                  // mutation: PATCH
	fieldDelete                  // mutation: DELETE
)

// joinShape is what a relation returns.
type joinShape uint8

const (
	joinOne  joinShape = iota // the first match or null
	joinList                  // [Entity]
	joinConn                  // EntityConnection
)

// fieldMeta is what the executor and the cost measure need to know about a
// schema field beyond its type: computed once by Compose, looked up by the
// field definition the validator attached to each selected field.
type fieldMeta struct {
	kind     fieldKind
	backend  string // the backend called (fieldPlain: none)
	entity   string // the entity type the call returns
	shape    joinShape
	from, to string // fieldJoin
	defFirst int    // connection and list relations: the default page size
}

// calls says whether resolving the field calls a backend (costs 1).
func (m *fieldMeta) calls() bool { return m != nil && m.kind != fieldPlain }

// multiplies says whether the field's selection is repeated per item (its
// cost multiplied by first).
func (m *fieldMeta) multiplies() bool {
	return m != nil && (m.kind == fieldConn || (m.kind == fieldJoin && m.shape != joinOne))
}

// defaultFirst is the page size when neither the SDL nor the query says.
const defaultFirst = 50

// Schema is a composed schema: immutable, shared by every request.
type Schema struct {
	ast      *ast.Schema
	backends []string
	sdl      string
	meta     map[*ast.FieldDefinition]*fieldMeta
	entities map[string]string // entity type → backend
	conns    map[string]string // connection type → entity type
}

// AST is gqlparser's schema.
func (s *Schema) AST() *ast.Schema { return s.ast }

// Backends are the backends that contributed, sorted.
func (s *Schema) Backends() []string { return append([]string(nil), s.backends...) }

// SDL is the composed schema, printed.
func (s *Schema) SDL() string { return s.sdl }

// builtinScalars are the spec's scalars, always defined.
var builtinScalars = map[string]bool{"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true}

// typeDef is a type definition and the backend whose source defined it.
type typeDef struct {
	def     *ast.Definition
	backend string
}

// extension is a source's `extend type`.
type extension struct {
	def     *ast.Definition
	backend string
}

// Compose builds the schema from the backends' SDL plus the base (package
// doc). warnings: fields and extensions dropped because they reference a
// type no source defines (a backend not registered), one line each.
func Compose(sources []Source) (s *Schema, warnings []string, err error) {
	srcs := append([]Source(nil), sources...)
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Backend < srcs[j].Backend })

	defs := map[string]*typeDef{}
	var order []string // definition names in first-seen order (sources sorted)
	var exts []*extension
	for i, src := range srcs {
		if src.Backend == "" {
			return nil, nil, errors.New("graphql: a source without a backend")
		}
		if i > 0 && srcs[i-1].Backend == src.Backend {
			return nil, nil, fmt.Errorf("graphql: backend %s has two sources", src.Backend)
		}
		doc, perr := parser.ParseSchema(&ast.Source{Name: src.Backend, Input: src.SDL})
		if perr != nil {
			return nil, nil, fmt.Errorf("graphql: backend %s: %w", src.Backend, perr)
		}
		if len(doc.Schema) > 0 || len(doc.SchemaExtension) > 0 || len(doc.Directives) > 0 || len(doc.DirectiveExtensions) > 0 {
			return nil, nil, fmt.Errorf("graphql: backend %s: a source may not define the schema or directives", src.Backend)
		}
		for _, d := range doc.Definitions {
			if d.Name == "Query" || d.Name == "Mutation" {
				// a source's `type Query` is its part of the root: an extension
				exts = append(exts, &extension{def: d, backend: src.Backend})
				continue
			}
			if err := checkDefinition(d, src.Backend); err != nil {
				return nil, nil, err
			}
			if prev, ok := defs[d.Name]; ok {
				if isEntity(d) || isEntity(prev.def) {
					return nil, nil, fmt.Errorf("graphql: entity %s is defined by backends %s and %s; an entity has one backend", d.Name, prev.backend, src.Backend)
				}
				if canonical(prev.def) != canonical(d) {
					return nil, nil, fmt.Errorf("graphql: type %s is defined differently by backends %s and %s", d.Name, prev.backend, src.Backend)
				}
				continue
			}
			defs[d.Name] = &typeDef{def: d, backend: src.Backend}
			order = append(order, d.Name)
		}
		for _, e := range doc.Extensions {
			if e.Kind != ast.Object && e.Kind != ast.InputObject {
				return nil, nil, fmt.Errorf("graphql: backend %s: only object and input types may be extended (%s)", src.Backend, e.Name)
			}
			exts = append(exts, &extension{def: e, backend: src.Backend})
		}
	}

	entities := map[string]string{}
	conns := map[string]string{}
	for _, name := range order {
		td := defs[name]
		if td.def.Kind == ast.Object && isEntity(td.def) {
			entities[name] = td.backend
		}
	}
	for ent := range entities {
		for _, gen := range []string{ent + "Connection", ent + "Edge"} {
			if td, ok := defs[gen]; ok {
				return nil, nil, fmt.Errorf("graphql: backend %s defines %s, which Compose generates for entity %s", td.backend, gen, ent)
			}
		}
		conns[ent+"Connection"] = ent
	}

	// Drop what references undefined types until nothing changes: a field
	// dropped may empty a type, whose removal drops more fields.
	known := func(name string) bool {
		if builtinScalars[name] || name == "PageInfo" {
			return true
		}
		if _, ok := defs[name]; ok {
			return true
		}
		_, ok := conns[name]
		return ok
	}
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(exts); i++ {
			e := exts[i]
			if e.def.Name != "Query" && e.def.Name != "Mutation" && !known(e.def.Name) {
				warnings = append(warnings, fmt.Sprintf("graphql: backend %s: extension of %s dropped: no source defines %s", e.backend, e.def.Name, e.def.Name))
				exts = append(exts[:i], exts[i+1:]...)
				i--
				changed = true
				continue
			}
			var dropped []string
			e.def.Fields, dropped = dropUnknown(e.def.Fields, known)
			for _, d := range dropped {
				warnings = append(warnings, fmt.Sprintf("graphql: backend %s: %s.%s dropped: %s", e.backend, e.def.Name, d, "it references a type no source defines"))
				changed = true
			}
		}
		for _, name := range order {
			td, ok := defs[name]
			if !ok || (td.def.Kind != ast.Object && td.def.Kind != ast.InputObject) {
				continue
			}
			var dropped []string
			td.def.Fields, dropped = dropUnknown(td.def.Fields, known)
			for _, d := range dropped {
				warnings = append(warnings, fmt.Sprintf("graphql: backend %s: %s.%s dropped: %s", td.backend, name, d, "it references a type no source defines"))
				changed = true
			}
			if len(td.def.Fields) == 0 {
				warnings = append(warnings, fmt.Sprintf("graphql: backend %s: type %s dropped: no field left", td.backend, name))
				delete(defs, name)
				changed = true
			}
		}
	}

	// Merge extensions into their types; Query and Mutation are built from
	// them. Root fields are remembered with their backend.
	query := &ast.Definition{Kind: ast.Object, Name: "Query", Description: "Reads across the registered backends."}
	mutation := &ast.Definition{Kind: ast.Object, Name: "Mutation", Description: "Writes to the registered backends."}
	fieldBackend := map[*ast.FieldDefinition]string{}
	contributed := map[string]bool{}
	for _, td := range defs {
		contributed[td.backend] = true
	}
	for _, e := range exts {
		var target *ast.Definition
		switch e.def.Name {
		case "Query":
			target = query
		case "Mutation":
			target = mutation
		default:
			target = defs[e.def.Name].def
			if target.Kind != e.def.Kind {
				return nil, nil, fmt.Errorf("graphql: backend %s extends %s as a %s, it is a %s", e.backend, e.def.Name, e.def.Kind, target.Kind)
			}
		}
		for _, f := range e.def.Fields {
			if target.Fields.ForName(f.Name) != nil {
				return nil, nil, fmt.Errorf("graphql: backend %s: field %s.%s is defined twice", e.backend, e.def.Name, f.Name)
			}
			target.Fields = append(target.Fields, f)
			fieldBackend[f] = e.backend
		}
		if len(e.def.Fields) > 0 {
			contributed[e.backend] = true
		}
	}
	if len(query.Fields) == 0 {
		return nil, warnings, errors.New("graphql: no source declares a root query field")
	}

	// The document gqlparser validates: the prelude, the base, the sources'
	// types, the generated connections, the roots.
	base, perr := parser.ParseSchema(&ast.Source{Name: "base", Input: baseSDL, BuiltIn: false})
	if perr != nil {
		return nil, nil, fmt.Errorf("graphql: base: %w", perr)
	}
	doc := validator.PreludeDocument()
	doc.Merge(base)
	for _, name := range order {
		if td, ok := defs[name]; ok {
			doc.Definitions = append(doc.Definitions, td.def)
		}
	}
	entNames := make([]string, 0, len(entities))
	for ent := range entities {
		entNames = append(entNames, ent)
	}
	sort.Strings(entNames)
	for _, ent := range entNames {
		doc.Definitions = append(doc.Definitions, connectionTypes(ent)...)
	}
	doc.Definitions = append(doc.Definitions, query)
	schemaDef := &ast.SchemaDefinition{OperationTypes: ast.OperationTypeDefinitionList{{Operation: ast.Query, Type: "Query"}}}
	if len(mutation.Fields) > 0 {
		doc.Definitions = append(doc.Definitions, mutation)
		schemaDef.OperationTypes = append(schemaDef.OperationTypes, &ast.OperationTypeDefinition{Operation: ast.Mutation, Type: "Mutation"})
	}
	doc.Schema = append(doc.Schema, schemaDef)
	as, verr := validator.ValidateSchemaDocument(doc)
	if verr != nil {
		return nil, nil, fmt.Errorf("graphql: composed schema: %w", verr)
	}

	s = &Schema{ast: as, meta: map[*ast.FieldDefinition]*fieldMeta{}, entities: entities, conns: conns}
	for b := range contributed {
		s.backends = append(s.backends, b)
	}
	sort.Strings(s.backends)
	for _, f := range query.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue // __schema, __type: gqlparser's, resolved by Introspect
		}
		m, err := s.rootQueryField(f, fieldBackend[f])
		if err != nil {
			return nil, nil, err
		}
		s.meta[f] = m
	}
	for _, f := range mutation.Fields {
		m, err := s.mutationField(f, fieldBackend[f])
		if err != nil {
			return nil, nil, err
		}
		s.meta[f] = m
	}
	for _, name := range order {
		td, ok := defs[name]
		if !ok || td.def.Kind != ast.Object {
			continue
		}
		for _, f := range td.def.Fields {
			m, err := s.objectField(td.def, f)
			if err != nil {
				return nil, nil, err
			}
			if m != nil {
				s.meta[f] = m
			}
		}
	}

	var buf bytes.Buffer
	formatter.NewFormatter(&buf, formatter.WithIndent("  ")).FormatSchema(as)
	s.sdl = buf.String()
	return s, warnings, nil
}

// isEntity says whether an object type is an entity (has a field id).
func isEntity(d *ast.Definition) bool {
	return d.Kind == ast.Object && d.Fields.ForName("id") != nil
}

// checkDefinition refuses what the executor does not serve.
func checkDefinition(d *ast.Definition, backend string) error {
	switch d.Kind {
	case ast.Object, ast.InputObject, ast.Enum, ast.Scalar:
	default:
		return fmt.Errorf("graphql: backend %s: %s is a %s; sources define objects, inputs, enums and scalars", backend, d.Name, d.Kind)
	}
	if d.Name == "PageInfo" || strings.HasPrefix(d.Name, "__") {
		return fmt.Errorf("graphql: backend %s may not define %s", backend, d.Name)
	}
	if len(d.Interfaces) > 0 {
		return fmt.Errorf("graphql: backend %s: %s implements interfaces; sources define no interfaces", backend, d.Name)
	}
	return nil
}

// canonical is a definition printed without descriptions: two sources'
// value types are the same when these are equal.
func canonical(d *ast.Definition) string {
	var buf bytes.Buffer
	formatter.NewFormatter(&buf, formatter.WithoutDescription()).FormatSchemaDocument(&ast.SchemaDocument{Definitions: ast.DefinitionList{d}})
	return buf.String()
}

// dropUnknown removes the fields whose type or an argument's type is not
// known, returning the names removed.
func dropUnknown(fields ast.FieldList, known func(string) bool) (ast.FieldList, []string) {
	var dropped []string
	kept := fields[:0]
	for _, f := range fields {
		ok := known(f.Type.Name())
		for _, a := range f.Arguments {
			ok = ok && known(a.Type.Name())
		}
		if ok {
			kept = append(kept, f)
		} else {
			dropped = append(dropped, f.Name)
		}
	}
	return kept, dropped
}

// connectionTypes generates an entity's connection and edge types.
func connectionTypes(ent string) ast.DefinitionList {
	nn := func(t *ast.Type) *ast.Type { t.NonNull = true; return t }
	return ast.DefinitionList{
		{Kind: ast.Object, Name: ent + "Connection", Description: "A page of " + ent + " objects.", Fields: ast.FieldList{
			{Name: "edges", Type: nn(ast.ListType(ast.NonNullNamedType(ent+"Edge", nil), nil))},
			{Name: "nodes", Type: nn(ast.ListType(ast.NonNullNamedType(ent, nil), nil))},
			{Name: "pageInfo", Type: ast.NonNullNamedType("PageInfo", nil)},
			{Name: "totalCount", Type: ast.NamedType("Int", nil), Description: "All objects matching, when the backend says."},
		}},
		{Kind: ast.Object, Name: ent + "Edge", Description: "A " + ent + " with its cursor.", Fields: ast.FieldList{
			{Name: "cursor", Type: ast.NonNullNamedType("String", nil)},
			{Name: "node", Type: ast.NonNullNamedType(ent, nil)},
		}},
	}
}

// pageArgs checks a connection's (or list relation's) arguments: first,
// after (when allowed), filter (an input object) and sort. It returns the
// default of first.
func (s *Schema) pageArgs(where string, f *ast.FieldDefinition, allowAfter bool) (int, error) {
	first := defaultFirst
	for _, a := range f.Arguments {
		switch {
		case a.Name == "first" && a.Type.Name() == "Int" && a.Type.Elem == nil:
			if a.DefaultValue != nil {
				v, err := a.DefaultValue.Value(nil)
				n, ok := v.(int64)
				if err != nil || !ok || n < 1 || n > MaxFirst {
					return 0, fmt.Errorf("graphql: %s: first's default must be 1..%d", where, MaxFirst)
				}
				first = int(n)
			}
		case a.Name == "after" && allowAfter && a.Type.Name() == "String" && a.Type.Elem == nil && !a.Type.NonNull:
		case a.Name == "sort" && a.Type.Name() == "String" && a.Type.Elem == nil && !a.Type.NonNull:
		case a.Name == "filter" && a.Type.Elem == nil && !a.Type.NonNull && s.ast.Types[a.Type.Name()] != nil && s.ast.Types[a.Type.Name()].Kind == ast.InputObject:
		default:
			return 0, fmt.Errorf("graphql: %s: argument %s: %s is not one of first: Int, %sfilter: <input>, sort: String", where, a.Name, a.Type, map[bool]string{true: "after: String, "}[allowAfter])
		}
	}
	return first, nil
}

// rootQueryField classifies a Query field: an item or a connection of an
// entity of its backend.
func (s *Schema) rootQueryField(f *ast.FieldDefinition, backend string) (*fieldMeta, error) {
	where := "backend " + backend + ": Query." + f.Name
	name := f.Type.Name()
	if ent, ok := s.conns[name]; ok && f.Type.Elem == nil {
		if s.entities[ent] != backend {
			return nil, fmt.Errorf("graphql: %s returns %s, not a connection of an entity of %s", where, name, backend)
		}
		first, err := s.pageArgs(where, f, true)
		if err != nil {
			return nil, err
		}
		return &fieldMeta{kind: fieldConn, backend: backend, entity: ent, defFirst: first}, nil
	}
	if s.entities[name] != backend || f.Type.Elem != nil {
		return nil, fmt.Errorf("graphql: %s returns %s, not an entity of %s or its connection", where, f.Type, backend)
	}
	if len(f.Arguments) != 1 || f.Arguments[0].Name != "id" || f.Arguments[0].Type.String() != "ID!" {
		return nil, fmt.Errorf("graphql: %s: an item field takes exactly id: ID!", where)
	}
	return &fieldMeta{kind: fieldItem, backend: backend, entity: name}, nil
}

// mutationField classifies a Mutation field by its directive.
func (s *Schema) mutationField(f *ast.FieldDefinition, backend string) (*fieldMeta, error) {
	where := "backend " + backend + ": Mutation." + f.Name
	var kinds []fieldKind
	for _, d := range f.Directives {
		switch d.Name {
		case "create":
			kinds = append(kinds, fieldCreate)
		case "update":
			kinds = append(kinds, fieldUpdate)
		case "delete":
			kinds = append(kinds, fieldDelete)
		}
	}
	if len(kinds) != 1 {
		return nil, fmt.Errorf("graphql: %s needs exactly one of @create, @update, @delete", where)
	}
	m := &fieldMeta{kind: kinds[0], backend: backend}
	var want []string // argument names in order
	switch m.kind {
	case fieldCreate:
		want = []string{"input"}
	case fieldUpdate:
		want = []string{"id", "input"}
	case fieldDelete:
		want = []string{"id"}
	}
	if len(f.Arguments) != len(want) {
		return nil, fmt.Errorf("graphql: %s takes exactly %s", where, strings.Join(want, ", "))
	}
	for _, name := range want {
		a := f.Arguments.ForName(name)
		if a == nil {
			return nil, fmt.Errorf("graphql: %s takes exactly %s", where, strings.Join(want, ", "))
		}
		if name == "id" && a.Type.String() != "ID!" {
			return nil, fmt.Errorf("graphql: %s: id must be ID!", where)
		}
		if name == "input" {
			t := s.ast.Types[a.Type.Name()]
			if !a.Type.NonNull || a.Type.Elem != nil || t == nil || t.Kind != ast.InputObject {
				return nil, fmt.Errorf("graphql: %s: input must be a non-null input object", where)
			}
		}
	}
	if m.kind == fieldDelete {
		if n := f.Type.Name(); f.Type.Elem != nil || (n != "Boolean" && n != "ID") {
			return nil, fmt.Errorf("graphql: %s: a @delete returns Boolean or ID", where)
		}
		return m, nil
	}
	if f.Type.Elem != nil || s.entities[f.Type.Name()] != backend {
		return nil, fmt.Errorf("graphql: %s returns %s, not an entity of %s", where, f.Type, backend)
	}
	m.entity = f.Type.Name()
	return m, nil
}

// objectField checks a source type's field: a relation (@join) or a value
// read from the parent's JSON (nil meta).
func (s *Schema) objectField(parent *ast.Definition, f *ast.FieldDefinition) (*fieldMeta, error) {
	where := parent.Name + "." + f.Name
	join := f.Directives.ForName("join")
	for _, d := range f.Directives {
		if d.Name == "create" || d.Name == "update" || d.Name == "delete" {
			return nil, fmt.Errorf("graphql: %s: @%s belongs on Mutation fields", where, d.Name)
		}
	}
	if join == nil {
		if len(f.Arguments) > 0 {
			return nil, fmt.Errorf("graphql: %s takes arguments but is no relation (@join)", where)
		}
		if _, ok := s.conns[f.Type.Name()]; ok {
			return nil, fmt.Errorf("graphql: %s returns a connection but is no relation (@join)", where)
		}
		return nil, nil
	}
	if !isEntity(parent) {
		return nil, fmt.Errorf("graphql: %s: relations start from an entity", where)
	}
	m := &fieldMeta{kind: fieldJoin, to: "id"}
	if a := join.Arguments.ForName("from"); a != nil {
		m.from = a.Value.Raw
	}
	if a := join.Arguments.ForName("to"); a != nil {
		m.to = a.Value.Raw
	}
	if parent.Fields.ForName(m.from) == nil {
		return nil, fmt.Errorf("graphql: %s: @join from %q is not a field of %s", where, m.from, parent.Name)
	}
	t := f.Type
	switch {
	case t.Elem == nil && s.entities[t.Name()] != "":
		m.shape, m.entity = joinOne, t.Name()
		if len(f.Arguments) > 0 {
			return nil, fmt.Errorf("graphql: %s: a single-object relation takes no arguments", where)
		}
	case t.Elem == nil && s.conns[t.Name()] != "":
		m.shape, m.entity = joinConn, s.conns[t.Name()]
	case t.Elem != nil && t.Elem.Elem == nil && s.entities[t.Elem.Name()] != "":
		m.shape, m.entity = joinList, t.Elem.Name()
	default:
		return nil, fmt.Errorf("graphql: %s: a relation returns an entity, a list of one or its connection, not %s", where, t)
	}
	if m.shape != joinOne {
		first, err := s.pageArgs(where, f, false)
		if err != nil {
			return nil, err
		}
		m.defFirst = first
	}
	m.backend = s.entities[m.entity]
	target := s.ast.Types[m.entity]
	if tf := target.Fields.ForName(m.to); tf == nil || tf.Type.Elem != nil {
		return nil, fmt.Errorf("graphql: %s: @join to %q is not a field of %s", where, m.to, m.entity)
	} else if k := s.ast.Types[tf.Type.Name()]; k == nil || k.Kind != ast.Scalar {
		return nil, fmt.Errorf("graphql: %s: @join to %q is not a scalar field of %s", where, m.to, m.entity)
	}
	return m, nil
}
