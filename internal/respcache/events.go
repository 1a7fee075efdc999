package respcache

import (
	"encoding/json"
	"strings"
)

// WriteEvent reads a business event (a CloudEvent in structured JSON, as
// internal/events publishes it) and returns its company and the resource
// of its type `erp.<resource>.created|updated|deleted`: the backend data
// that changed. ok is false for every other event, and for one without a
// company.
func WriteEvent(data []byte) (company, resource string, ok bool) {
	var ev struct {
		Type      string `json:"type"`
		CompanyID string `json:"companyid"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.CompanyID == "" {
		return "", "", false
	}
	rest, found := strings.CutPrefix(ev.Type, "erp.")
	if !found {
		return "", "", false
	}
	resource, action, found := strings.Cut(rest, ".")
	if !found || resource == "" {
		return "", "", false
	}
	switch action {
	case "created", "updated", "deleted":
		return ev.CompanyID, resource, true
	}
	return "", "", false
}
