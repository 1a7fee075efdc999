// Package erpgate is the API edge for multi-company ERP platforms: Caddy v2
// with erpgate's modules. Importing it (as xcaddy does with
// `--with github.com/erpgate/erpgate`) registers every erpgate module.
// It owns nothing: its one import is caddymodules/all, which only this
// package and cmd/ may import; it must import nothing else of ours.
package erpgate

import _ "github.com/erpgate/erpgate/caddymodules/all"
