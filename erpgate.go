// Package erpgate is the API edge for multi-company ERP platforms: Caddy v2
// with erpgate's modules. Importing it (as xcaddy does with
// `--with github.com/erpgate/erpgate`) registers every erpgate module.
package erpgate

import _ "github.com/erpgate/erpgate/caddymodules/all"
