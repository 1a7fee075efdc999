// Package all blank-imports every erpgate Caddy module.
package all
