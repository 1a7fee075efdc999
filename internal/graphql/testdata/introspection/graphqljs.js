// graphqljs.js writes graphqljs.json: graphql-js's answer to query.graphql
// over schema.graphql, the oracle introspection_test.go compares Introspect
// with. The built-in scalars, the introspection types and the built-in
// directives are left out (gqlparser's prelude and graphql-js's differ
// there: @defer, DIRECTIVE_DEFINITION), and types are sorted by name.
//
// Regenerate after changing either file:
//   npm install --prefix /tmp/graphqljs graphql@16.9.0
//   NODE_PATH=/tmp/graphqljs/node_modules node graphqljs.js
const { buildSchema, graphqlSync } = require('graphql');
const fs = require('fs');
const path = require('path');

const here = (f) => path.join(__dirname, f);
const schema = buildSchema(fs.readFileSync(here('schema.graphql'), 'utf8'));
const res = graphqlSync({ schema, source: fs.readFileSync(here('query.graphql'), 'utf8') });
if (res.errors) {
  console.error(JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
const builtinTypes = ['String', 'Int', 'Float', 'Boolean', 'ID'];
const builtinDirectives = ['defer', 'deprecated', 'include', 'oneOf', 'skip', 'specifiedBy'];
const s = res.data.__schema;
s.types = s.types
  .filter((t) => !t.name.startsWith('__') && !builtinTypes.includes(t.name))
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
s.directives = s.directives.filter((d) => !builtinDirectives.includes(d.name));
fs.writeFileSync(here('graphqljs.json'), JSON.stringify(s, null, 1) + '\n');
