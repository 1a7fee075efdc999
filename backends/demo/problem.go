package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// problemTypeBase prefixes every problem type URI.
const problemTypeBase = "https://erpgate.dev/problems/"

// Problem is an RFC 9457 problem details object; Errors is the extension
// member listing bad fields.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors,omitempty"`
}

func newProblem(status int, kind, format string, args ...any) *Problem {
	title := http.StatusText(status)
	if title == "" {
		title = "Status " + strconv.Itoa(status)
	}
	return &Problem{Type: problemTypeBase + kind, Title: title, Status: status, Detail: fmt.Sprintf(format, args...)}
}

// validationProblem is the 422 answer listing every bad field.
func validationProblem(errs []FieldError) *Problem {
	detail := errs[0].Message
	if len(errs) > 1 {
		detail = fmt.Sprintf("%d fields are invalid", len(errs))
	}
	return &Problem{Type: problemTypeBase + "validation", Title: "Validation failed",
		Status: http.StatusUnprocessableEntity, Detail: detail, Errors: errs}
}

// queryProblem is the 400 answer for bad list parameters, in the same shape.
func queryProblem(errs []FieldError) *Problem {
	p := validationProblem(errs)
	p.Type, p.Title, p.Status = problemTypeBase+"bad-request", http.StatusText(http.StatusBadRequest), http.StatusBadRequest
	return p
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this type; keep the status anyway
		body = []byte(`{"type":"about:blank","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// writeJSON answers v as application/json with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, newProblem(http.StatusInternalServerError, "internal", "encoding the response failed"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
