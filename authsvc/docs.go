package authsvc

import (
	"net/http"
	"strconv"

	"github.com/erpgate/erpgate/authsvc/openapi"
)

// rawDoc is an answer that is not an envelope: the OpenAPI document (whose
// schema allows no envelope members at its top level) and the HTML page.
type rawDoc struct {
	contentType string
	body        []byte
	header      map[string]string
}

func (d rawDoc) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", d.contentType)
	h.Set("Content-Length", strconv.Itoa(len(d.body)))
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	for k, v := range d.header {
		h.Set(k, v)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(d.body)
}

// handleOpenAPI serves the OpenAPI 3.1 document of the public surface.
func (s *Service) handleOpenAPI(c *call) (int, any, error) {
	return http.StatusOK, rawDoc{contentType: "application/json; charset=utf-8", body: openapi.Document,
		header: map[string]string{"Access-Control-Allow-Origin": "*"}}, nil
}

// handleDocs serves the reference page (assets inline, no CDN) under a
// policy that allows only its own script and style and same-origin fetches.
func (s *Service) handleDocs(c *call) (int, any, error) {
	return http.StatusOK, rawDoc{contentType: "text/html; charset=utf-8", body: openapi.Page, header: map[string]string{
		"Content-Security-Policy": openapi.ContentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}}, nil
}
