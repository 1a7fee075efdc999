package demo

import (
	"net/http"
	"strconv"
	"strings"
)

// The journal is a large read-only REST collection, /{v}/journal: every
// company has JournalRows posting lines, computed from their index on each
// request and never stored, so that a million-row export can run through
// the edge without the demo holding a million records. The lines come in
// posting batches of JournalBatchRows (field batch, "B01" … "B20"): the
// filter batch=B01 (through the edge: filter=batch:eq:B01) narrows the
// collection to one batch. Sorts: id (the default) and -id.
const (
	JournalRows      = 1_000_000
	JournalBatchRows = 50_000
)

func init() {
	resources["journal"] = journal{}
	DefaultBackends["journal"] = "journal"
}

type journal struct{}

// journalLine renders line i (0-based) of company c as JSON.
func appendJournalLine(b []byte, c *company, i int) []byte {
	b = append(b, `{"id":"jnl_`...)
	b = appendPadded(b, i+1, 7)
	b = append(b, `","batch":"`...)
	b = appendBatch(b, i/JournalBatchRows)
	b = append(b, `","account":"`...)
	b = append(b, ledgerAccounts[i%len(ledgerAccounts)]...)
	b = append(b, `","description":`...)
	b = strconv.AppendQuote(b, ledgerTexts[i%len(ledgerTexts)])
	b = append(b, `,"amount":`...)
	cents := int64(i%100000)*7 + 1
	if i%3 == 1 {
		cents = -cents
	}
	b = strconv.AppendFloat(b, float64(cents)/100, 'f', -1, 64)
	b = append(b, `,"currency":"`...)
	b = append(b, c.currency...)
	b = append(b, `","posted_on":"2026-`...)
	b = appendPadded(b, i%12+1, 2)
	b = append(b, '-')
	b = appendPadded(b, i%28+1, 2)
	b = append(b, `"}`...)
	return b
}

func appendPadded(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendBatch(b []byte, n int) []byte {
	b = append(b, 'B')
	return appendPadded(b, n+1, 2)
}

func (journal) serveCollection(_ *Server, w http.ResponseWriter, r *http.Request, c *company, _ string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	q := r.URL.Query()
	page, limit := 1, defaultLimit
	var errs []FieldError
	if s, ok := q["page"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 {
			errs = append(errs, FieldError{Field: "page", Code: codeInvalidValue, Message: "page must be a positive integer"})
		} else {
			page = n
		}
	}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, FieldError{Field: "limit", Code: codeInvalidValue,
				Message: "limit must be an integer between 1 and " + strconv.Itoa(maxLimit)})
		} else {
			limit = n
		}
	}
	desc := false
	if s, ok := q["sort"]; ok {
		switch strings.TrimSpace(s[0]) {
		case "id":
		case "-id":
			desc = true
		default:
			errs = append(errs, FieldError{Field: "sort", Code: codeInvalidValue, Message: "the journal sorts by id or -id only"})
		}
	}
	// the rows selected: [lo, hi) of the index
	lo, hi := 0, JournalRows
	if s, ok := q["batch"]; ok {
		lo, hi = 0, 0
		if n, err := strconv.Atoi(strings.TrimPrefix(s[0], "B")); err == nil && strings.HasPrefix(s[0], "B") && len(s[0]) == 3 &&
			n >= 1 && n <= JournalRows/JournalBatchRows {
			lo, hi = (n-1)*JournalBatchRows, n*JournalBatchRows
		}
	}
	for k := range q {
		switch k {
		case "page", "limit", "sort", "batch":
		default:
			errs = append(errs, FieldError{Field: k, Code: codeInvalidValue, Message: "the journal filters on batch only"})
		}
	}
	if len(errs) > 0 {
		writeProblem(w, queryProblem(errs))
		return
	}
	total := hi - lo
	last := max(1, (total+limit-1)/limit)
	b := make([]byte, 0, 160*limit+2)
	b = append(b, '[')
	if page <= last {
		start := (page - 1) * limit
		for k := start; k < min(start+limit, total); k++ {
			i := lo + k
			if desc {
				i = hi - 1 - k
			}
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = appendJournalLine(b, c, i)
		}
	}
	b = append(b, ']')
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(total))
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(limit))
	h.Set("Link", linkHeader(r.URL.Path, q, page, limit, last))
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

func (journal) serveItem(_ *Server, w http.ResponseWriter, r *http.Request, c *company, _, id string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	n, err := strconv.Atoi(strings.TrimPrefix(id, "jnl_"))
	if err != nil || !strings.HasPrefix(id, "jnl_") || len(id) != 11 || n < 1 || n > JournalRows {
		writeProblem(w, newProblem(http.StatusNotFound, "not-found", "journal line %q does not exist", id))
		return
	}
	b := appendJournalLine(make([]byte, 0, 192), c, n-1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}
