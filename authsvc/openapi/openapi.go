// Package openapi holds erpgate's OpenAPI 3.1 document of the whole public
// surface (auth service, admin API, usage, the generic backend route with
// the data plane's conditional requests, merge, Idempotency-Key, cache,
// export and import, cookie mode, the envelope and every error code) and the reference page that renders it,
// both embedded in the binary. The auth service serves them at
// GET /api/v1/openapi.json and GET /api/v1/docs. It owns the document and
// the page, no state; it imports only the standard library and must not
// import the service (authsvc imports it) nor Caddy.
//
// The document is written by hand (openapi.json) and kept true to the
// routes by tests: authsvc's openapi_test.go compares it with the router
// table and checks that every $ref resolves and every example fits its
// schema, and e2e/account sends every documented operation to the running
// binary and holds the data plane's answers to the document.
package openapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"strings"
)

//go:embed openapi.json docs.html docs.js docs.css
var files embed.FS

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("openapi: embedded file missing: " + name)
	}
	return b
}

// Document is the OpenAPI 3.1 document (JSON).
var Document = mustRead("openapi.json")

// Page is the reference page: one HTML document whose script and style are
// inline (no other request but the document's own fetch), and
// ContentSecurityPolicy is the policy to serve it with: nothing but that
// script, that style and same-origin fetches.
var Page, ContentSecurityPolicy = page()

func page() ([]byte, string) {
	js, css := mustRead("docs.js"), mustRead("docs.css")
	html := mustRead("docs.html")
	html = bytes.Replace(html, []byte("/*STYLE*/"), css, 1)
	html = bytes.Replace(html, []byte("/*SCRIPT*/"), js, 1)
	hash := func(b []byte) string {
		h := sha256.Sum256(b)
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src " + hash(js),
		"style-src " + hash(css),
		"connect-src 'self'",
		"img-src 'self' data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
	return html, csp
}
