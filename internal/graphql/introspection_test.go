package graphql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/erpgate/erpgate/contract"
)

// introspectionSDL is the test schema: one of each kind of type and each
// feature the introspection answer describes. introspectionQuery is the full
// query GraphiQL sends (with descriptions, specifiedByURL, isRepeatable,
// schema description, deprecated input values and isOneOf). Both are in
// testdata/introspection, where graphqljs.js reads them too.
func introspectionSDL(t testing.TB) string { return readTestdata(t, "schema.graphql") }

func introspectionQuery(t testing.TB) string { return readTestdata(t, "query.graphql") }

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "introspection", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The shapes of the introspection answer, for decoding it.
type (
	iSchema struct {
		Description      *string
		QueryType        *iTypeRef
		MutationType     *iTypeRef
		SubscriptionType *iTypeRef
		Types            []iType
		Directives       []iDirective
	}
	iTypeRef struct {
		Kind   string
		Name   *string
		OfType *iTypeRef
	}
	iType struct {
		Kind           string
		Name           *string
		Description    *string
		SpecifiedByURL *string
		IsOneOf        *bool
		Fields         *[]iField
		InputFields    *[]iInputValue
		Interfaces     *[]iTypeRef
		EnumValues     *[]iEnumValue
		PossibleTypes  *[]iTypeRef
	}
	iField struct {
		Name              string
		Description       *string
		Args              []iInputValue
		Type              iTypeRef
		IsDeprecated      bool
		DeprecationReason *string
	}
	iInputValue struct {
		Name              string
		Description       *string
		Type              iTypeRef
		DefaultValue      *string
		IsDeprecated      bool
		DeprecationReason *string
	}
	iEnumValue struct {
		Name              string
		Description       *string
		IsDeprecated      bool
		DeprecationReason *string
	}
	iDirective struct {
		Name         string
		Description  *string
		IsRepeatable bool
		Locations    []string
		Args         []iInputValue
	}
)

// sdl renders a type reference as SDL ("[Line!]!").
func (r iTypeRef) sdl() string {
	switch r.Kind {
	case "NON_NULL":
		return r.ofType() + "!"
	case "LIST":
		return "[" + r.ofType() + "]"
	}
	if r.Name == nil {
		return "<unnamed " + r.Kind + ">"
	}
	return *r.Name
}

func (r iTypeRef) ofType() string {
	if r.OfType == nil {
		return "<nil>"
	}
	return r.OfType.sdl()
}

func (s *iSchema) typ(t *testing.T, name string) iType {
	t.Helper()
	for _, x := range s.Types {
		if x.Name != nil && *x.Name == name {
			return x
		}
	}
	t.Fatalf("type %s not in the answer", name)
	return iType{}
}

func (x iType) field(t *testing.T, name string) iField {
	t.Helper()
	if x.Fields == nil {
		t.Fatalf("type %s has no fields", *x.Name)
	}
	for _, f := range *x.Fields {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("field %s.%s not in the answer", *x.Name, name)
	return iField{}
}

func inputValue(t *testing.T, list []iInputValue, name string) iInputValue {
	t.Helper()
	for _, v := range list {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("input value %s not in the answer", name)
	return iInputValue{}
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func loadTestSchema(t testing.TB) *ast.Schema {
	t.Helper()
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "test.graphql", Input: introspectionSDL(t)})
	if err != nil {
		t.Fatalf("LoadSchema: %v", err)
	}
	return schema
}

// rootField parses and validates query against schema and returns its
// operation's first root field and the coerced variables.
func rootField(t testing.TB, schema *ast.Schema, query string, vars map[string]any) (*ast.Field, map[string]any) {
	t.Helper()
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		t.Fatalf("LoadQuery: %v", errs)
	}
	op := doc.Operations[0]
	coerced, err := validator.VariableValues(schema, op, vars)
	if err != nil {
		t.Fatalf("VariableValues: %v", err)
	}
	f, ok := op.SelectionSet[0].(*ast.Field)
	if !ok {
		t.Fatalf("first selection is %T", op.SelectionSet[0])
	}
	return f, coerced
}

// introspectOK runs Introspect and fails the test on any error or invalid
// JSON.
func introspectOK(t *testing.T, schema *ast.Schema, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	f, coerced := rootField(t, schema, query, vars)
	raw, errs := Introspect(schema, f, coerced)
	for _, e := range errs {
		t.Errorf("error: %+v", *e)
	}
	if !json.Valid(raw) {
		t.Fatalf("answer is not valid JSON: %s", raw)
	}
	return raw
}

// keys returns the member names of the JSON object raw, in order.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestIntrospectFullQuery(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	raw := introspectOK(t, schema, introspectionQuery(t), nil)

	var s iSchema
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decode: %v", err)
	}

	t.Run("schema", func(t *testing.T) {
		if got := keys(t, raw); !slices.Equal(got, []string{"description", "queryType", "mutationType", "subscriptionType", "types", "directives"}) {
			t.Errorf("__schema keys %v", got)
		}
		if str(s.Description) != "The test schema." {
			t.Errorf("description %q", str(s.Description))
		}
		if str(s.QueryType.Name) != "Query" || s.QueryType.Kind != "OBJECT" {
			t.Errorf("queryType %+v", s.QueryType)
		}
		if str(s.MutationType.Name) != "Mutation" {
			t.Errorf("mutationType %+v", s.MutationType)
		}
		if s.SubscriptionType != nil {
			t.Errorf("subscriptionType %+v, want null", s.SubscriptionType)
		}
	})

	t.Run("types", func(t *testing.T) {
		var names []string
		for _, x := range s.Types {
			names = append(names, str(x.Name))
		}
		if !slices.IsSorted(names) {
			t.Errorf("types not sorted by name: %v", names)
		}
		want := len(schema.Types)
		if len(names) != want {
			t.Errorf("%d types, the schema has %d", len(names), want)
		}
		for _, n := range []string{"__Schema", "__Type", "__TypeKind", "__Field", "__InputValue", "__EnumValue", "__Directive", "__DirectiveLocation", "String", "Boolean", "Int", "Float", "ID", "Invoice", "Pick"} {
			s.typ(t, n)
		}
		kinds := map[string]string{
			"Invoice": "OBJECT", "Node": "INTERFACE", "Document": "INTERFACE", "SearchResult": "UNION",
			"Status": "ENUM", "LineFilter": "INPUT_OBJECT", "Decimal": "SCALAR", "String": "SCALAR",
		}
		for n, k := range kinds {
			if got := s.typ(t, n).Kind; got != k {
				t.Errorf("%s kind %s, want %s", n, got, k)
			}
		}
		// Only the fields that apply to a kind are non-null.
		inv, st, lf, sr, dec := s.typ(t, "Invoice"), s.typ(t, "Status"), s.typ(t, "LineFilter"), s.typ(t, "SearchResult"), s.typ(t, "Decimal")
		if inv.Fields == nil || inv.Interfaces == nil || inv.EnumValues != nil || inv.InputFields != nil || inv.PossibleTypes != nil || inv.IsOneOf != nil {
			t.Errorf("object's lists: %+v", inv)
		}
		if st.Fields != nil || st.EnumValues == nil || st.Interfaces != nil {
			t.Errorf("enum's lists: %+v", st)
		}
		if lf.InputFields == nil || lf.Fields != nil || lf.IsOneOf == nil || *lf.IsOneOf {
			t.Errorf("input's lists: %+v", lf)
		}
		if sr.PossibleTypes == nil || sr.Fields != nil {
			t.Errorf("union's lists: %+v", sr)
		}
		if dec.Fields != nil || dec.PossibleTypes != nil || dec.EnumValues != nil {
			t.Errorf("scalar's lists: %+v", dec)
		}
	})

	t.Run("descriptions and escaping", func(t *testing.T) {
		inv := s.typ(t, "Invoice")
		if got := str(inv.Description); got != "A sales invoice: \"quoted\", tab\there, naïve ✓." {
			t.Errorf("description %q", got)
		}
		if s.typ(t, "Line").Description != nil {
			t.Errorf("no description must be null")
		}
		if got := str(s.typ(t, "Decimal").SpecifiedByURL); got != "https://example.com/decimal" {
			t.Errorf("specifiedByURL %q", got)
		}
		if s.typ(t, "String").SpecifiedByURL != nil || inv.SpecifiedByURL != nil {
			t.Errorf("specifiedByURL must be null without @specifiedBy")
		}
		if p := s.typ(t, "Pick"); p.IsOneOf == nil || !*p.IsOneOf {
			t.Errorf("Pick isOneOf %v", p.IsOneOf)
		}
	})

	t.Run("type references", func(t *testing.T) {
		inv := s.typ(t, "Invoice")
		for field, want := range map[string]string{
			"id": "ID!", "lines": "[Line!]!", "total": "Money", "matrix": "[[Int!]]!", "search": "[SearchResult]",
		} {
			if got := inv.field(t, field).Type.sdl(); got != want {
				t.Errorf("Invoice.%s: %s, want %s", field, got, want)
			}
		}
		// [Line!]! spelled out: NON_NULL → LIST → NON_NULL → OBJECT Line.
		r := inv.field(t, "lines").Type
		chain := []string{}
		for p := &r; p != nil; p = p.OfType {
			chain = append(chain, p.Kind+":"+str(p.Name))
		}
		if want := []string{"NON_NULL:<null>", "LIST:<null>", "NON_NULL:<null>", "OBJECT:Line"}; !slices.Equal(chain, want) {
			t.Errorf("lines chain %v, want %v", chain, want)
		}
	})

	t.Run("fields", func(t *testing.T) {
		var names []string
		for _, f := range *s.typ(t, "Query").Fields {
			names = append(names, f.Name)
		}
		if want := []string{"invoice", "invoices", "node"}; !slices.Equal(names, want) {
			t.Errorf("Query fields %v, want %v (the implicit __schema and __type are not listed)", names, want)
		}
		names = names[:0]
		for _, f := range *s.typ(t, "Invoice").Fields {
			names = append(names, f.Name)
		}
		if want := []string{"id", "number", "lines", "status", "total", "legacyTotal", "oldNumber", "matrix", "search"}; !slices.Equal(names, want) {
			t.Errorf("Invoice fields %v, want the schema's order %v", names, want)
		}
	})

	t.Run("interfaces and possible types", func(t *testing.T) {
		var names []string
		for _, i := range *s.typ(t, "Invoice").Interfaces {
			names = append(names, str(i.Name))
		}
		if want := []string{"Node", "Document"}; !slices.Equal(names, want) {
			t.Errorf("Invoice interfaces %v", names)
		}
		doc := s.typ(t, "Document")
		if len(*doc.Interfaces) != 1 || str((*doc.Interfaces)[0].Name) != "Node" {
			t.Errorf("Document interfaces %+v", *doc.Interfaces)
		}
		names = names[:0]
		for _, p := range *s.typ(t, "Node").PossibleTypes {
			names = append(names, p.Kind+":"+str(p.Name))
		}
		// Document implements Node but is an interface: not a possible type.
		if want := []string{"OBJECT:Invoice", "OBJECT:Customer"}; !slices.Equal(names, want) {
			t.Errorf("Node possibleTypes %v, want %v", names, want)
		}
		names = names[:0]
		for _, p := range *s.typ(t, "SearchResult").PossibleTypes {
			names = append(names, str(p.Name))
		}
		if want := []string{"Invoice", "Customer"}; !slices.Equal(names, want) {
			t.Errorf("SearchResult possibleTypes %v", names)
		}
	})

	t.Run("default values", func(t *testing.T) {
		lines := s.typ(t, "Invoice").field(t, "lines")
		for name, want := range map[string]string{"first": "20", "after": "<null>", "sort": "[POSITION, AMOUNT]"} {
			if got := str(inputValue(t, lines.Args, name).DefaultValue); got != want {
				t.Errorf("lines(%s) default %s, want %s", name, got, want)
			}
		}
		in := *s.typ(t, "LineFilter").InputFields
		for name, want := range map[string]string{
			"min": "1.5", "status": "OPEN", "tags": `["a", "b\"c"]`, "note": `"line\nbreak"`,
			"range": "{from: 1, to: 10, open: true}", "legacy": "<null>",
		} {
			if got := str(inputValue(t, in, name).DefaultValue); got != want {
				t.Errorf("LineFilter.%s default %s, want %s", name, got, want)
			}
		}
		if got := inputValue(t, lines.Args, "sort").Type.sdl(); got != "[SortKey!]" {
			t.Errorf("sort type %s", got)
		}
	})

	t.Run("deprecation", func(t *testing.T) {
		inv := s.typ(t, "Invoice")
		if f := inv.field(t, "legacyTotal"); !f.IsDeprecated || str(f.DeprecationReason) != "No longer supported" {
			t.Errorf("legacyTotal %+v reason %s", f, str(f.DeprecationReason))
		}
		if f := inv.field(t, "oldNumber"); !f.IsDeprecated || str(f.DeprecationReason) != "Use number." {
			t.Errorf("oldNumber reason %s", str(f.DeprecationReason))
		}
		if f := inv.field(t, "number"); f.IsDeprecated || f.DeprecationReason != nil {
			t.Errorf("number %+v", f)
		}
		if a := inputValue(t, inv.field(t, "search").Args, "scope"); !a.IsDeprecated || str(a.DeprecationReason) != "ignored" {
			t.Errorf("search(scope:) %+v", a)
		}
		var enum []string
		for _, v := range *s.typ(t, "Status").EnumValues {
			enum = append(enum, fmt.Sprintf("%s:%v:%s:%s", v.Name, v.IsDeprecated, str(v.DeprecationReason), str(v.Description)))
		}
		want := []string{
			"DRAFT:false:<null>:<null>", "OPEN:false:<null>:Sent to the customer.", "PAID:false:<null>:<null>",
			"VOID:true:Use DRAFT.:<null>", "CANCELLED:true:No longer supported:<null>",
		}
		if !slices.Equal(enum, want) {
			t.Errorf("Status values %v, want %v", enum, want)
		}
		if v := inputValue(t, *s.typ(t, "LineFilter").InputFields, "legacy"); !v.IsDeprecated || str(v.DeprecationReason) != "gone" {
			t.Errorf("LineFilter.legacy %+v", v)
		}
	})

	t.Run("directives", func(t *testing.T) {
		var names []string
		for _, d := range s.Directives {
			names = append(names, d.Name)
		}
		if want := []string{"cached", "defer", "deprecated", "include", "oneOf", "skip", "specifiedBy"}; !slices.Equal(names, want) {
			t.Errorf("directives %v, want %v", names, want)
		}
		for _, d := range s.Directives {
			switch d.Name {
			case "cached":
				if !d.IsRepeatable || !slices.Equal(d.Locations, []string{"FIELD_DEFINITION", "OBJECT"}) || str(d.Description) != "Marks a field as cached." {
					t.Errorf("@cached %+v", d)
				}
				if len(d.Args) != 2 || str(d.Args[0].DefaultValue) != "60" || !d.Args[1].IsDeprecated {
					t.Errorf("@cached args %+v", d.Args)
				}
			case "skip":
				if d.IsRepeatable || !slices.Equal(d.Locations, []string{"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"}) {
					t.Errorf("@skip %+v", d)
				}
				if len(d.Args) != 1 || d.Args[0].Name != "if" || d.Args[0].Type.sdl() != "Boolean!" {
					t.Errorf("@skip args %+v", d.Args)
				}
			case "deprecated":
				if got := str(d.Args[0].DefaultValue); got != `"No longer supported"` {
					t.Errorf("@deprecated(reason:) default %s", got)
				}
			}
		}
	})

	t.Run("fragment selection order", func(t *testing.T) {
		// The keys of a type come in FullType's order, those of a field
		// in the inline selection's, those of a type reference in
		// TypeRef's.
		var probe struct {
			Types []json.RawMessage
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			t.Fatal(err)
		}
		if got, want := keys(t, probe.Types[0]), []string{"kind", "name", "description", "specifiedByURL", "isOneOf", "fields", "inputFields", "interfaces", "enumValues", "possibleTypes"}; !slices.Equal(got, want) {
			t.Errorf("type keys %v, want %v", got, want)
		}
		var inv struct {
			Fields []struct {
				Args []json.RawMessage
				Type json.RawMessage
			}
		}
		for _, x := range probe.Types {
			if bytes.Contains(x, []byte(`"name":"Invoice"`)) && bytes.HasPrefix(x, []byte(`{"kind":"OBJECT","name":"Invoice"`)) {
				if err := json.Unmarshal(x, &inv); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(inv.Fields) < 3 || len(inv.Fields[2].Args) == 0 {
			t.Fatalf("Invoice.lines not found: %+v", inv)
		}
		if got, want := keys(t, inv.Fields[2].Args[0]), []string{"name", "description", "type", "defaultValue", "isDeprecated", "deprecationReason"}; !slices.Equal(got, want) {
			t.Errorf("input value keys %v, want %v", got, want)
		}
		if got, want := keys(t, inv.Fields[2].Type), []string{"kind", "name", "ofType"}; !slices.Equal(got, want) {
			t.Errorf("type ref keys %v, want %v", got, want)
		}
	})
}

// TestIntrospectRoundTrip rebuilds SDL from the full introspection answer
// (as a client's buildClientSchema would), loads it with gqlparser and
// compares it with the original schema as gqlparser's formatter prints both:
// every type, field, argument, default value, deprecation, interface, union
// member, enum value, directive definition and description must survive.
func TestIntrospectRoundTrip(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	raw := introspectOK(t, schema, introspectionQuery(t), nil)
	var s iSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	rebuilt := sdlFromIntrospection(t, &s)
	back, err := gqlparser.LoadSchema(&ast.Source{Name: "rebuilt.graphql", Input: rebuilt})
	if err != nil {
		t.Fatalf("rebuilt SDL does not load: %v\n%s", err, rebuilt)
	}
	format := func(sc *ast.Schema) string {
		var b strings.Builder
		formatter.NewFormatter(&b).FormatSchema(sc)
		return b.String()
	}
	if want, got := format(schema), format(back); got != want {
		t.Errorf("round trip differs\n--- original\n%s\n--- from introspection\n%s", want, got)
	}
	if back.Description != schema.Description {
		t.Errorf("schema description %q, want %q", back.Description, schema.Description)
	}
}

// sdlFromIntrospection prints the non-built-in part of an introspection
// answer as SDL.
func sdlFromIntrospection(t *testing.T, s *iSchema) string {
	t.Helper()
	quote := func(v string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	var b strings.Builder
	desc := func(d *string, indent string) {
		if d != nil {
			b.WriteString(indent + quote(*d) + "\n")
		}
	}
	deprecation := func(dep bool, reason *string) string {
		switch {
		case !dep:
			return ""
		case reason != nil && *reason == "No longer supported":
			return " @deprecated"
		case reason == nil:
			return " @deprecated(reason: null)"
		}
		return " @deprecated(reason: " + quote(*reason) + ")"
	}
	inputValue := func(v iInputValue) string {
		out := ""
		if v.Description != nil {
			out += quote(*v.Description) + " "
		}
		out += v.Name + ": " + v.Type.sdl()
		if v.DefaultValue != nil {
			out += " = " + *v.DefaultValue
		}
		return out + deprecation(v.IsDeprecated, v.DeprecationReason)
	}
	args := func(list []iInputValue) string {
		if len(list) == 0 {
			return ""
		}
		parts := make([]string, len(list))
		for i, a := range list {
			parts[i] = inputValue(a)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	names := func(list *[]iTypeRef) []string {
		var out []string
		for _, r := range *list {
			out = append(out, str(r.Name))
		}
		return out
	}

	desc(s.Description, "")
	b.WriteString("schema { query: " + str(s.QueryType.Name))
	if s.MutationType != nil {
		b.WriteString(", mutation: " + str(s.MutationType.Name))
	}
	if s.SubscriptionType != nil {
		b.WriteString(", subscription: " + str(s.SubscriptionType.Name))
	}
	b.WriteString(" }\n")
	builtin := map[string]bool{"String": true, "Int": true, "Float": true, "Boolean": true, "ID": true}
	for _, x := range s.Types {
		name := str(x.Name)
		if builtin[name] || strings.HasPrefix(name, "__") {
			continue
		}
		desc(x.Description, "")
		switch x.Kind {
		case "SCALAR":
			b.WriteString("scalar " + name)
			if x.SpecifiedByURL != nil {
				b.WriteString(" @specifiedBy(url: " + quote(*x.SpecifiedByURL) + ")")
			}
			b.WriteString("\n")
		case "OBJECT", "INTERFACE":
			kw := map[string]string{"OBJECT": "type", "INTERFACE": "interface"}[x.Kind]
			b.WriteString(kw + " " + name)
			if ifs := names(x.Interfaces); len(ifs) > 0 {
				b.WriteString(" implements " + strings.Join(ifs, " & "))
			}
			b.WriteString(" {\n")
			for _, f := range *x.Fields {
				desc(f.Description, "  ")
				b.WriteString("  " + f.Name + args(f.Args) + ": " + f.Type.sdl() + deprecation(f.IsDeprecated, f.DeprecationReason) + "\n")
			}
			b.WriteString("}\n")
		case "UNION":
			b.WriteString("union " + name + " = " + strings.Join(names(x.PossibleTypes), " | ") + "\n")
		case "ENUM":
			b.WriteString("enum " + name + " {\n")
			for _, v := range *x.EnumValues {
				desc(v.Description, "  ")
				b.WriteString("  " + v.Name + deprecation(v.IsDeprecated, v.DeprecationReason) + "\n")
			}
			b.WriteString("}\n")
		case "INPUT_OBJECT":
			b.WriteString("input " + name)
			if x.IsOneOf != nil && *x.IsOneOf {
				b.WriteString(" @oneOf")
			}
			b.WriteString(" {\n")
			for _, v := range *x.InputFields {
				b.WriteString("  " + inputValue(v) + "\n")
			}
			b.WriteString("}\n")
		default:
			t.Fatalf("type %s of kind %s", name, x.Kind)
		}
	}
	for _, d := range s.Directives {
		switch d.Name {
		case "defer", "deprecated", "include", "oneOf", "skip", "specifiedBy":
			continue
		}
		desc(d.Description, "")
		b.WriteString("directive @" + d.Name + args(d.Args))
		if d.IsRepeatable {
			b.WriteString(" repeatable")
		}
		b.WriteString(" on " + strings.Join(d.Locations, " | ") + "\n")
	}
	return b.String()
}

// TestIntrospectMatchesGraphQLJS compares the full answer with graphql-js's
// (testdata/introspection/graphqljs.json, written by graphqljs.js there) for
// every type and directive the test schema declares: kinds, orders, type
// references, default values as GraphQL text, deprecations, descriptions.
func TestIntrospectMatchesGraphQLJS(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	raw := introspectOK(t, schema, introspectionQuery(t), nil)
	var mine map[string]any
	if err := json.Unmarshal(raw, &mine); err != nil {
		t.Fatal(err)
	}
	// The same cut as graphqljs.js: the built-ins differ between
	// gqlparser's prelude and graphql-js's. Types are sorted by name on
	// both sides already.
	var types, dirs []any
	for _, x := range mine["types"].([]any) {
		n := x.(map[string]any)["name"].(string)
		if !strings.HasPrefix(n, "__") && !slices.Contains([]string{"String", "Int", "Float", "Boolean", "ID"}, n) {
			types = append(types, x)
		}
	}
	for _, x := range mine["directives"].([]any) {
		if !slices.Contains([]string{"defer", "deprecated", "include", "oneOf", "skip", "specifiedBy"}, x.(map[string]any)["name"].(string)) {
			dirs = append(dirs, x)
		}
	}
	mine["types"], mine["directives"] = types, dirs

	var theirs map[string]any
	if err := json.Unmarshal([]byte(readTestdata(t, "graphqljs.json")), &theirs); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mine, theirs) {
		a, _ := json.MarshalIndent(theirs, "", " ")
		b, _ := json.MarshalIndent(mine, "", " ")
		al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
		for i := range min(len(al), len(bl)) {
			if al[i] != bl[i] {
				t.Fatalf("differs from graphql-js at line %d:\n graphql-js: %s\n Introspect: %s", i+1, al[i], bl[i])
			}
		}
		t.Fatalf("differs from graphql-js in length: %d lines, graphql-js %d", len(bl), len(al))
	}
}

func TestIntrospectSelection(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	cases := []struct {
		name  string
		query string
		vars  map[string]any
		want  string
	}{
		{
			name:  "aliases and __typename",
			query: `{ s: __schema { __typename q: queryType { n: name k: kind t: __typename } } }`,
			want:  `{"__typename":"__Schema","q":{"n":"Query","k":"OBJECT","t":"__Type"}}`,
		},
		{
			name:  "fields of one key merge, keys in first-seen order",
			query: `{ __schema { queryType { name } mutationType { kind } queryType { kind } } }`,
			want:  `{"queryType":{"name":"Query","kind":"OBJECT"},"mutationType":{"kind":"OBJECT"}}`,
		},
		{
			name:  "skip and include with literals",
			query: `{ __schema { queryType { name @skip(if: true) kind @include(if: true) description @include(if: false) } } }`,
			want:  `{"queryType":{"kind":"OBJECT"}}`,
		},
		{
			name:  "skip with variables",
			query: `query ($s: Boolean!, $i: Boolean!) { __schema { queryType { name @skip(if: $s) kind @include(if: $i) } } }`,
			vars:  map[string]any{"s": true, "i": false},
			want:  `{"queryType":{}}`,
		},
		{
			name:  "skip with a variable's default",
			query: `query ($s: Boolean = true) { __schema { queryType { name @skip(if: $s) kind } } }`,
			want:  `{"queryType":{"kind":"OBJECT"}}`,
		},
		{
			name: "named and inline fragments, skipped ones, and a spread seen twice",
			query: `query ($no: Boolean!) {
				__schema { queryType { ...A ... on __Type { kind } ...A ... @include(if: $no) { description } ...B @skip(if: $no) } }
			}
			fragment A on __Type { name }
			fragment B on __Type { __typename }`,
			vars: map[string]any{"no": false},
			want: `{"queryType":{"name":"Query","kind":"OBJECT","__typename":"__Type"}}`,
		},
		{
			name:  "__type by name",
			query: `{ __type(name: "Money") { kind name fields { name type { kind ofType { name } } } } }`,
			want:  `{"kind":"OBJECT","name":"Money","fields":[{"name":"amount","type":{"kind":"NON_NULL","ofType":{"name":"Decimal"}}},{"name":"currency","type":{"kind":"NON_NULL","ofType":{"name":"String"}}}]}`,
		},
		{
			name:  "__type by a variable",
			query: `query ($n: String!) { t: __type(name: $n) { name kind } }`,
			vars:  map[string]any{"n": "SearchResult"},
			want:  `{"name":"SearchResult","kind":"UNION"}`,
		},
		{
			name:  "__type of an unknown name is null",
			query: `{ __type(name: "Nope") { name } }`,
			want:  `null`,
		},
		{
			name:  "deprecated left out by default",
			query: `{ __type(name: "Status") { enumValues { name } } }`,
			want:  `{"enumValues":[{"name":"DRAFT"},{"name":"OPEN"},{"name":"PAID"}]}`,
		},
		{
			name:  "includeDeprecated by a variable",
			query: `query ($d: Boolean) { __type(name: "Status") { enumValues(includeDeprecated: $d) { name isDeprecated } } }`,
			vars:  map[string]any{"d": true},
			want:  `{"enumValues":[{"name":"DRAFT","isDeprecated":false},{"name":"OPEN","isDeprecated":false},{"name":"PAID","isDeprecated":false},{"name":"VOID","isDeprecated":true},{"name":"CANCELLED","isDeprecated":true}]}`,
		},
		{
			name:  "includeDeprecated by an unset variable is its default",
			query: `query ($d: Boolean) { __type(name: "LineFilter") { inputFields(includeDeprecated: $d) { name } } }`,
			want:  `{"inputFields":[{"name":"min"},{"name":"status"},{"name":"tags"},{"name":"note"},{"name":"range"}]}`,
		},
		{
			name:  "deprecated arguments left out by default",
			query: `{ __type(name: "Invoice") { fields { name args { name } } } }`,
			want:  `{"fields":[{"name":"id","args":[]},{"name":"number","args":[]},{"name":"lines","args":[{"name":"first"},{"name":"after"},{"name":"filter"},{"name":"sort"}]},{"name":"status","args":[]},{"name":"total","args":[]},{"name":"matrix","args":[]},{"name":"search","args":[{"name":"q"},{"name":"exact"}]}]}`,
		},
		{
			name:  "a list type",
			query: `{ __type(name: "Invoice") { fields(includeDeprecated: true) { type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }`,
			want:  "", // checked below: only valid JSON and no error
		},
		{
			name:  "an introspection type describes itself",
			query: `{ __type(name: "__Type") { name fields { name args { name defaultValue } } } }`,
			want:  `{"name":"__Type","fields":[{"name":"kind","args":[]},{"name":"name","args":[]},{"name":"description","args":[]},{"name":"specifiedByURL","args":[]},{"name":"fields","args":[{"name":"includeDeprecated","defaultValue":"false"}]},{"name":"interfaces","args":[]},{"name":"possibleTypes","args":[]},{"name":"enumValues","args":[{"name":"includeDeprecated","defaultValue":"false"}]},{"name":"inputFields","args":[{"name":"includeDeprecated","defaultValue":"false"}]},{"name":"ofType","args":[]},{"name":"isOneOf","args":[]}]}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := introspectOK(t, schema, tc.query, tc.vars)
			if tc.want != "" && string(raw) != tc.want {
				t.Errorf("got  %s\nwant %s", raw, tc.want)
			}
		})
	}
}

func TestIntrospectErrors(t *testing.T) {
	t.Parallel()

	t.Run("a type the schema lacks is null up to the nearest nullable field", func(t *testing.T) {
		t.Parallel()
		schema := loadTestSchema(t)
		// Break the schema after validation: Money.rate names a type
		// that is not there.
		money := schema.Types["Money"]
		money.Fields = append(money.Fields, &ast.FieldDefinition{Name: "rate", Type: ast.NamedType("Ghost", nil)})
		f, vars := rootField(t, schema, `{
  __type(name: "Money") {
    name
    fields { name type { name } }
  }
}`, nil)
		raw, errs := Introspect(schema, f, vars)
		// __Field.type is non-null, so is each __Field of the list: the
		// nullable `fields` is null.
		if want := `{"name":"Money","fields":null}`; string(raw) != want {
			t.Errorf("got %s, want %s", raw, want)
		}
		if len(errs) != 1 {
			t.Fatalf("errors %+v", errs)
		}
		e := errs[0]
		if e.Code != contract.CodeInternal || !strings.Contains(e.Message, "Ghost") {
			t.Errorf("error %+v", *e)
		}
		if want := []any{"__type", "fields", 2, "type"}; !reflect.DeepEqual(e.Path, want) {
			t.Errorf("path %v, want %v", e.Path, want)
		}
		if want := []Location{{Line: 4, Column: 19}}; !reflect.DeepEqual(e.Locations, want) {
			t.Errorf("locations %v, want %v", e.Locations, want)
		}
	})

	t.Run("inside types, the error stops at the type's fields", func(t *testing.T) {
		t.Parallel()
		schema := loadTestSchema(t)
		money := schema.Types["Money"]
		money.Fields = append(money.Fields, &ast.FieldDefinition{Name: "rate", Type: ast.NamedType("Ghost", nil)})
		// types is [__Type!]!, but fields under it is nullable.
		f, vars := rootField(t, schema, `{ s: __schema { types { name fields { type { name } } } } }`, nil)
		raw, errs := Introspect(schema, f, vars)
		if !json.Valid(raw) || !bytes.Contains(raw, []byte(`{"name":"Money","fields":null},{"name":"Mutation","fields":[{"type":{"name":"Boolean"}}]}`)) {
			t.Errorf("Money's fields not null: %s", raw)
		}
		if len(errs) != 1 || !reflect.DeepEqual(errs[0].Path, []any{"s", "types", 10, "fields", 2, "type"}) {
			t.Errorf("errors %+v", errs)
		}
		// A selection that does not reach the broken field answers whole.
		f, vars = rootField(t, schema, `{ __schema { queryType { name } s2: types { name } } }`, nil)
		raw, errs = Introspect(schema, f, vars)
		if len(errs) != 0 || !bytes.Contains(raw, []byte(`{"name":"Money"}`)) {
			t.Errorf("got %s, errors %+v", raw, errs)
		}
	})

	t.Run("a non-null chain up to the root makes the field null", func(t *testing.T) {
		t.Parallel()
		schema := loadTestSchema(t)
		// directives: [__Directive!]!, args: [__InputValue!]!, type:
		// __Type!, and __schema itself is __Schema!.
		schema.Directives["cached"].Arguments[0].Type = ast.NamedType("Ghost", nil)
		f, vars := rootField(t, schema, `{ __schema { queryType { name } directives { name args { type { name } } } } }`, nil)
		raw, errs := Introspect(schema, f, vars)
		if string(raw) != "null" {
			t.Errorf("got %s, want null", raw)
		}
		if len(errs) != 1 || errs[0].Code != contract.CodeInternal || !reflect.DeepEqual(errs[0].Path, []any{"__schema", "directives", 0, "args", 0, "type"}) {
			t.Errorf("errors %+v", errs)
		}
	})

	t.Run("an answer over the bound is null with PAYLOAD_TOO_LARGE", func(t *testing.T) {
		t.Parallel()
		schema := loadTestSchema(t)
		f, vars := rootField(t, schema, introspectionQuery(t), nil)
		full, errs := Introspect(schema, f, vars)
		if len(errs) != 0 {
			t.Fatalf("errors %+v", errs)
		}
		raw, errs := introspect(schema, f, vars, len(full)/2)
		if string(raw) != "null" {
			t.Errorf("got %.100s…", raw)
		}
		if len(errs) != 1 || errs[0].Code != contract.CodePayloadTooLarge || !reflect.DeepEqual(errs[0].Path, []any{"__schema"}) || errs[0].Context["limit"] != len(full)/2 {
			t.Fatalf("errors %+v", errs)
		}
		// Exactly at the size, the answer is whole.
		raw, errs = introspect(schema, f, vars, len(full))
		if len(errs) != 0 || !bytes.Equal(raw, full) {
			t.Errorf("at the bound: %d errors, equal %v", len(errs), bytes.Equal(raw, full))
		}
	})

	t.Run("aliases past MaxIntrospectionBytes stop the answer", func(t *testing.T) {
		t.Parallel()
		// gqlparser's MaxIntrospectionDepth rule keeps nesting shallow,
		// but aliases still multiply: 20 copies of a 1 MiB description.
		desc := strings.Repeat("x", 1<<20)
		schema, err := gqlparser.LoadSchema(&ast.Source{Input: "\"" + desc + "\"\ntype Query { a: Int }"})
		if err != nil {
			t.Fatal(err)
		}
		var q strings.Builder
		q.WriteString("{ __schema {")
		for i := range 20 {
			fmt.Fprintf(&q, " t%d: types { description }", i)
		}
		q.WriteString(" } }")
		f, vars := rootField(t, schema, q.String(), nil)
		raw, errs := Introspect(schema, f, vars)
		if string(raw) != "null" || len(errs) != 1 || errs[0].Code != contract.CodePayloadTooLarge {
			t.Fatalf("got %.100s, errors %+v", raw, errs)
		}
	})
}

// TestAppendLiteral checks the default values' GraphQL text against what
// gqlparser parses back: printing then parsing is the identity.
func TestAppendLiteral(t *testing.T) {
	t.Parallel()
	for _, lit := range []string{
		`1`, `-2.5e3`, `true`, `null`, `OPEN`, `"plain"`, `"q\"b\\s/ \n\r\t\b\f ctl\u0001 del\u007F c1\u0085 naïve ✓"`,
		`[]`, `[1, 2, 3]`, `[[1], [2, null]]`, `{}`, `{a: 1, b: "x", c: [ENUM], d: {e: false}}`,
	} {
		schema, err := gqlparser.LoadSchema(&ast.Source{Input: "scalar Any\ntype Query { f(a: Any = " + lit + "): Int }"})
		if err != nil {
			t.Fatalf("%s: %v", lit, err)
		}
		v := schema.Query.Fields.ForName("f").Arguments.ForName("a").DefaultValue
		got := string(appendLiteral(nil, v))
		if got != lit {
			t.Errorf("printed %s, want %s", got, lit)
		}
	}
	// A block string prints as an ordinary string of its value.
	schema, err := gqlparser.LoadSchema(&ast.Source{Input: "type Query { f(a: String = \"\"\"\n  two\n  lines\n\"\"\"): Int }"})
	if err != nil {
		t.Fatal(err)
	}
	v := schema.Query.Fields.ForName("f").Arguments.ForName("a").DefaultValue
	if got := string(appendLiteral(nil, v)); got != `"two\nlines"` {
		t.Errorf("block string printed %s", got)
	}
}

// TestIntrospectConcurrent runs Introspect on one validated document from
// several goroutines (a cached persisted query is shared like this): under
// -race it shows that nothing of the document or schema is written.
func TestIntrospectConcurrent(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	f, vars := rootField(t, schema, introspectionQuery(t), nil)
	want, errs := Introspect(schema, f, vars)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	const n = 8
	got := make([]json.RawMessage, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], _ = Introspect(schema, f, vars) })
	}
	wg.Wait()
	for i, g := range got {
		if !bytes.Equal(g, want) {
			t.Errorf("goroutine %d answered differently", i)
		}
	}
}

func TestIntrospectUnresolvedFragment(t *testing.T) {
	t.Parallel()
	schema := loadTestSchema(t)
	f, vars := rootField(t, schema, `{ __schema { queryType { ...A kind } } } fragment A on __Type { name }`, nil)
	// A document gqlparser did not validate has no fragment definitions
	// on its spreads.
	qt := f.SelectionSet[0].(*ast.Field)
	qt.SelectionSet[0].(*ast.FragmentSpread).Definition = nil
	raw, errs := Introspect(schema, f, vars)
	if string(raw) != `{"queryType":{"kind":"OBJECT"}}` || len(errs) != 1 || errs[0].Code != contract.CodeInternal {
		t.Errorf("got %s, errors %+v", raw, errs)
	}
	if want := []any{"__schema", "queryType"}; len(errs) == 1 && !reflect.DeepEqual(errs[0].Path, want) {
		t.Errorf("path %v, want %v", errs[0].Path, want)
	}
}

func BenchmarkIntrospectFull(b *testing.B) {
	schema := loadTestSchema(b)
	f, vars := rootField(b, schema, introspectionQuery(b), nil)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		raw, errs := Introspect(schema, f, vars)
		if len(errs) != 0 {
			b.Fatal(errs)
		}
		size = len(raw)
	}
	b.ReportMetric(float64(size), "bytes/answer")
}

// BenchmarkIntrospectFullParallel shares one schema and document between
// goroutines, as the endpoint does.
func BenchmarkIntrospectFullParallel(b *testing.B) {
	schema := loadTestSchema(b)
	f, vars := rootField(b, schema, introspectionQuery(b), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, errs := Introspect(schema, f, vars); len(errs) != 0 {
				b.Error(errs)
				return
			}
		}
	})
}
