package graphql

import (
	"encoding/json"
	"errors"
	"math"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/erpgate/erpgate/contract"
)

// maxTokens bounds the lexer whatever the plan's size limit: the
// validator's work grows faster than the document.
const maxTokens = 50000

// Prepared is a parsed, validated operation within its limits, ready to
// execute.
type Prepared struct {
	doc      *ast.QueryDocument
	op       *ast.OperationDefinition
	vars     map[string]any
	cost     int
	depth    int
	aliases  int
	backends map[string]bool
}

// Cost is the operation's cost (package doc).
func (p *Prepared) Cost() int { return p.cost }

// Depth is the deepest field selection (a root field is 1).
func (p *Prepared) Depth() int { return p.depth }

// Aliases counts the aliased fields.
func (p *Prepared) Aliases() int { return p.aliases }

// Kind is "query" or "mutation".
func (p *Prepared) Kind() string { return string(p.op.Operation) }

// Backends are the backends the operation may call, true for the ones it
// writes (for logging and metrics).
func (p *Prepared) Backends() map[string]bool { return p.backends }

// Prepare parses and validates req against the schema, picks the operation,
// coerces the variables, then measures depth, cost, aliases and size and
// refuses the operation over any of lim with QUERY_TOO_COMPLEX. Parse and
// validation errors are BAD_REQUEST (VALIDATION_FAILED for variables). No
// backend is called.
func (s *Schema) Prepare(req *Request, lim Limits) (*Prepared, []*Error) {
	if lim.MaxSize > 0 && len(req.Query) > lim.MaxSize {
		return nil, []*Error{tooComplex("size", len(req.Query), lim.MaxSize)}
	}
	if strings.TrimSpace(req.Query) == "" {
		return nil, []*Error{{Message: "the request has no query", Code: contract.CodeBadRequest}}
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: req.Query}, maxTokens)
	if err != nil {
		return nil, fromGQLError(err, contract.CodeBadRequest)
	}
	// Validate, not ValidateWithRules: the same specified rules, but the
	// latter sorts its rule set again on every call (Prepare took 40% longer).
	if list := validator.Validate(s.ast, doc); len(list) > 0 { //nolint:staticcheck // see above
		return nil, fromGQLError(list, contract.CodeBadRequest)
	}
	var op *ast.OperationDefinition
	switch {
	case req.OperationName != "":
		if op = doc.Operations.ForName(req.OperationName); op == nil {
			return nil, []*Error{{Message: "the document has no operation named " + req.OperationName, Code: contract.CodeBadRequest, Field: "operationName"}}
		}
	case len(doc.Operations) == 1:
		op = doc.Operations[0]
	default:
		return nil, []*Error{{Message: "the document has several operations: operationName must name one", Code: contract.CodeBadRequest, Field: "operationName"}}
	}
	if op.Operation == ast.Subscription {
		return nil, []*Error{{Message: "subscriptions are not served here; the event stream is /api/v1/events/stream", Code: contract.CodeBadRequest, Locations: locations(op.Position)}}
	}
	vars, err := validator.VariableValues(s.ast, op, req.Variables)
	if err != nil {
		return nil, fromGQLError(err, contract.CodeValidationFailed)
	}
	p := &Prepared{doc: doc, op: op, vars: vars, backends: map[string]bool{}}
	m := measurer{s: s, p: p, frags: map[string]*measure{}}
	total := m.selection(op.SelectionSet)
	p.depth, p.cost, p.aliases = total.depth, total.cost, total.aliases
	switch {
	case lim.MaxDepth > 0 && p.depth > lim.MaxDepth:
		return nil, []*Error{tooComplex("depth", p.depth, lim.MaxDepth)}
	case lim.MaxCost > 0 && p.cost > lim.MaxCost:
		return nil, []*Error{tooComplex("cost", p.cost, lim.MaxCost)}
	case lim.MaxAliases > 0 && p.aliases > lim.MaxAliases:
		return nil, []*Error{tooComplex("aliases", p.aliases, lim.MaxAliases)}
	}
	return p, nil
}

// tooComplex is the refusal of an operation over a limit.
func tooComplex(what string, measured, limit int) *Error {
	return &Error{
		Message: "the operation's " + what + " is over the plan's limit",
		Code:    contract.CodeQueryTooComplex,
		Context: map[string]any{what: measured, "limit": limit},
	}
}

// fromGQLError turns gqlparser's errors into ours, with their locations.
func fromGQLError(err error, code string) []*Error {
	var list gqlerror.List
	var one *gqlerror.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = gqlerror.List{one}
	default:
		return []*Error{{Message: err.Error(), Code: code}}
	}
	out := make([]*Error, 0, len(list))
	for _, e := range list {
		ge := &Error{Message: e.Message, Code: code}
		for _, l := range e.Locations {
			ge.Locations = append(ge.Locations, Location{Line: l.Line, Column: l.Column})
		}
		if code == contract.CodeValidationFailed && len(e.Path) > 1 {
			// variable coercion: the path is variable.<name>[.…]
			ge.Field = strings.TrimPrefix(e.Path.String(), "variable.")
		}
		out = append(out, ge)
	}
	return out
}

func locations(pos *ast.Position) []Location {
	if pos == nil {
		return nil
	}
	return []Location{{Line: pos.Line, Column: pos.Column}}
}

// measure is what a selection set adds up to.
type measure struct {
	depth, cost, aliases int
}

// measurer measures an operation; a fragment is measured once however
// often it is spread, so nested spreads cannot make the walk exponential.
type measurer struct {
	s     *Schema
	p     *Prepared
	frags map[string]*measure
}

// capped bounds the arithmetic: a cost past it is over every limit anyway.
const capped = math.MaxInt32

func addCapped(a, b int) int { return min(a+b, capped) }

func mulCapped(a, b int) int {
	if a != 0 && b > capped/a {
		return capped
	}
	return min(a*b, capped)
}

func (m *measurer) selection(set ast.SelectionSet) measure {
	var out measure
	add := func(c measure) {
		out.depth = max(out.depth, c.depth)
		out.cost = addCapped(out.cost, c.cost)
		out.aliases = addCapped(out.aliases, c.aliases)
	}
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			add(m.field(sel))
		case *ast.InlineFragment:
			add(m.selection(sel.SelectionSet))
		case *ast.FragmentSpread:
			c, ok := m.frags[sel.Name]
			if !ok {
				c = &measure{}
				m.frags[sel.Name] = c // a cycle (refused by validation) ends here
				if def := m.p.doc.Fragments.ForName(sel.Name); def != nil {
					*c = m.selection(def.SelectionSet)
				}
			}
			add(*c)
		}
	}
	return out
}

func (m *measurer) field(f *ast.Field) measure {
	if f.Name == "__schema" || f.Name == "__type" {
		return measure{} // introspection: served from the schema, free
	}
	var out measure
	if f.Alias != "" && f.Alias != f.Name {
		out.aliases = 1
	}
	child := m.selection(f.SelectionSet)
	out.depth = 1 + child.depth
	out.aliases = addCapped(out.aliases, child.aliases)
	meta := m.s.meta[f.Definition]
	if !meta.calls() {
		out.cost = child.cost
		return out
	}
	out.cost = 1
	m.p.backends[meta.backend] = m.p.backends[meta.backend] || meta.kind >= fieldCreate
	mult := 1
	if meta.multiplies() {
		mult = min(max(firstArg(f, m.p.vars, meta.defFirst), 1), MaxFirst)
	}
	out.cost = addCapped(out.cost, mulCapped(mult, child.cost))
	return out
}

// firstArg is a field's `first` argument, or def when not given (or not an
// integer: the executor refuses that at the field).
func firstArg(f *ast.Field, vars map[string]any, def int) int {
	a := f.Arguments.ForName("first")
	if a == nil {
		return def
	}
	n, ok := intValue(a.Value, vars)
	if !ok {
		return def
	}
	return n
}

// intValue reads an integer argument, literal or variable.
func intValue(v *ast.Value, vars map[string]any) (int, bool) {
	var x any
	if v.Kind == ast.Variable {
		var ok bool
		if x, ok = vars[v.Raw]; !ok {
			return 0, false
		}
	} else {
		var err error
		if x, err = v.Value(vars); err != nil {
			return 0, false
		}
	}
	switch n := x.(type) {
	case int64:
		return clampInt(float64(n))
	case int:
		return clampInt(float64(n))
	case float64:
		if n == math.Trunc(n) {
			return clampInt(n)
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return clampInt(float64(i))
		}
	}
	return 0, false
}

func clampInt(f float64) (int, bool) {
	return int(max(min(f, capped), -capped)), true
}
