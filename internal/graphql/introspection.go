package graphql

// TEMPORARY (branch h16-core only): h16-intro's introspection.go replaces
// this file at merge.

import (
	"encoding/json"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgate/erpgate/contract"
)

// Introspect resolves a root __schema or __type field.
func Introspect(schema *ast.Schema, field *ast.Field, vars map[string]any) (json.RawMessage, []*Error) {
	return nil, []*Error{{Message: "introspection is not in this build yet", Code: contract.CodeInternal}}
}
